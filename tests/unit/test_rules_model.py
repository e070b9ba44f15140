"""The rules model code on the tiny generated model: pixels, tensor, tokens, embeddings and scores,
each checked against an independent numpy computation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import pyvips

from konifer_edge.config.rules import RuleDefinition, RuleInferenceSettings
from konifer_edge.imaging.model_pixels import model_pixels
from konifer_edge.rules.model import ModelFiles, ModelUnavailable, SiglipModel, check_model_available, find_model_files
from konifer_edge.rules.scoring import LOGIT_BIAS, LOGIT_SCALE, prompt_score, score_rule
from konifer_edge.rules.text import model_text
from tests.support.tiny_siglip import (
    VOCABULARY,
    build_tiny_model,
    embedding_of_colour,
    expected_score,
    expected_text_embedding,
)

RED = (255, 0, 0)
BLUE = (0, 0, 255)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-siglip"))


def files_in(directory: Path) -> ModelFiles:
    return find_model_files(RuleInferenceSettings(model_directory=str(directory)))


@pytest.fixture(scope="module")
def model(model_dir: Path) -> SiglipModel:
    return SiglipModel(files_in(model_dir), threads=1)


def solid(rgb: tuple[int, int, int], width: int = 64, height: int = 48, fmt: str = ".png") -> bytes:
    image = pyvips.Image.black(width, height, bands=3).new_from_image(list(rgb)).cast("uchar")
    data: bytes = image.write_to_buffer(fmt)
    return data


def halves(width: int, height: int, left: tuple[int, int, int], right: tuple[int, int, int]) -> pyvips.Image:
    half = width // 2
    left_part = pyvips.Image.black(half, height, bands=3).new_from_image(list(left))
    right_part = pyvips.Image.black(width - half, height, bands=3).new_from_image(list(right))
    return left_part.join(right_part, "horizontal").cast("uchar")


def independent_tensor(rgb_rows: np.ndarray) -> np.ndarray:
    """[1,3,H,W] from H x W x 3 uint8, by the formula of spec 06 section 2: v / 127.5 - 1."""
    return (rgb_rows.astype(np.float64) / 127.5 - 1.0).transpose(2, 0, 1)[np.newaxis]


# -- image side ------------------------------------------------------------------------------------


def test_the_tensor_of_a_known_image_equals_an_independent_numpy_computation(model: SiglipModel) -> None:
    # 448 x 224, red | blue: the cover crop keeps the middle 224 columns at scale 1, so columns
    # 0..111 are red and 112..223 blue, with no resampling to blur the edge.
    content = halves(448, 224, RED, BLUE).write_to_buffer(".png")

    tensor = model.pixel_tensor(model_pixels(content))

    expected_rows = np.zeros((224, 224, 3), dtype=np.uint8)
    expected_rows[:, :112] = RED
    expected_rows[:, 112:] = BLUE
    assert tensor.shape == (1, 3, 224, 224)
    assert tensor.dtype == np.float32
    np.testing.assert_allclose(tensor, independent_tensor(expected_rows), atol=1e-6)
    assert tensor[0, 0, 0, 0] == pytest.approx(1.0) and tensor[0, 2, 0, 0] == pytest.approx(-1.0)


def test_small_images_are_enlarged_and_cropped_to_224_square(model: SiglipModel) -> None:
    tensor = model.pixel_tensor(model_pixels(solid(BLUE, 30, 10)))

    assert tensor.shape == (1, 3, 224, 224)
    np.testing.assert_allclose(tensor[0, :, 100, 100], [-1.0, -1.0, 1.0], atol=1e-6)


def test_alpha_is_flattened_onto_white() -> None:
    transparent = pyvips.Image.black(40, 40, bands=4).new_from_image([255, 0, 0, 0]).cast("uchar")
    half = pyvips.Image.black(40, 40, bands=4).new_from_image([0, 0, 0, 128]).cast("uchar")

    clear = np.frombuffer(model_pixels(transparent.write_to_buffer(".png")), dtype=np.uint8)
    halfway = np.frombuffer(model_pixels(half.write_to_buffer(".png")), dtype=np.uint8)

    assert set(clear.tolist()) == {255}
    # 0 * 128/255 + 255 * (1 - 128/255) = 127
    assert all(abs(value - 127) <= 1 for value in set(halfway.tolist()))


def test_greyscale_becomes_three_equal_channels() -> None:
    grey = pyvips.Image.black(32, 32).new_from_image([200]).cast("uchar")

    pixels = np.frombuffer(model_pixels(grey.write_to_buffer(".png")), dtype=np.uint8).reshape(224, 224, 3)

    assert set(pixels.reshape(-1).tolist()) == {200}


def test_exif_orientation_is_not_applied() -> None:
    # Red | blue, marked "rotate 90 clockwise": applying it would put red on top instead.
    image = halves(448, 224, RED, BLUE).copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    content = image.write_to_buffer(".jpg", Q=95)

    pixels = np.frombuffer(model_pixels(content), dtype=np.uint8).reshape(224, 224, 3).astype(int)

    assert pixels[112, 20, 0] > 200 and pixels[112, 20, 2] < 60  # left is red
    assert pixels[112, 200, 2] > 200 and pixels[112, 200, 0] < 60  # right is blue


def test_only_the_first_frame_of_an_animation_is_seen() -> None:
    frames = [pyvips.Image.black(20, 20, bands=3).new_from_image(list(c)).cast("uchar") for c in (RED, BLUE)]
    strip = frames[0].join(frames[1], "vertical")
    strip.set_type(pyvips.GValue.gint_type, "page-height", 20)
    content = strip.write_to_buffer(".gif")

    pixels = np.frombuffer(model_pixels(content), dtype=np.uint8).reshape(224, 224, 3).astype(int)

    assert pixels[:, :, 0].min() > 200 and pixels[:, :, 2].max() < 60


def test_the_image_embedding_is_l2_normalised(model: SiglipModel) -> None:
    embedding = model.embed_image(model_pixels(solid(RED)))

    expected = embedding_of_colour(RED) / np.linalg.norm(embedding_of_colour(RED))
    np.testing.assert_allclose(embedding.reshape(-1), expected, atol=1e-6)


# -- text side -------------------------------------------------------------------------------------


def test_prompts_get_the_photo_prefix_once() -> None:
    assert model_text("  A Red Car ") == "this is a photo of a red car"
    assert model_text("This is a photo of red") == "this is a photo of red"


def test_tokens_are_padded_and_truncated_to_64(model: SiglipModel) -> None:
    long_prompt = " ".join(f"w{number}" for number in range(80))

    ids, mask = model.tokenize(["red", long_prompt])

    assert ids.shape == (2, 64) and mask.shape == (2, 64) and ids.dtype == np.int64
    prefix = [VOCABULARY.index(word) for word in ("this", "is", "a", "photo", "of")]
    assert ids[0, :7].tolist() == [*prefix, VOCABULARY.index("red"), VOCABULARY.index("</s>")]
    assert ids[0, 7:].tolist() == [VOCABULARY.index("<pad>")] * 57
    assert mask[0].tolist() == [1] * 7 + [0] * 57
    assert mask[1].tolist() == [1] * 64


def test_text_embeddings_are_l2_normalised_sums_of_the_prompt_words(model: SiglipModel) -> None:
    embeddings = model.embed_prompts(["red", "blue white"])

    for row, prompt in zip(embeddings, ["red", "blue white"], strict=True):
        expected = expected_text_embedding(prompt)
        np.testing.assert_allclose(row, expected / np.linalg.norm(expected), atol=1e-6)


def test_a_text_model_without_attention_mask_is_fed_ids_only(tmp_path: Path) -> None:
    model = SiglipModel(files_in(build_tiny_model(tmp_path, with_mask=False)), threads=1)

    (row,) = model.embed_prompts(["green"])

    # Without a mask the padding is summed too; it embeds as zero, so the result is the same.
    expected = expected_text_embedding("green")
    np.testing.assert_allclose(row, expected / np.linalg.norm(expected), atol=1e-6)


# -- scores ----------------------------------------------------------------------------------------


def test_the_score_formula_uses_siglip2_base_constants() -> None:
    assert LOGIT_SCALE == 4.724453449249268 and LOGIT_BIAS == -16.771724700927734
    for cosine in (-1.0, -0.2, 0.0, 0.1, 0.149, 0.16, 0.3, 1.0):
        expected = 1.0 / (1.0 + np.exp(-(cosine * np.exp(4.724453449249268) - 16.771724700927734)))
        assert prompt_score(cosine) == pytest.approx(float(expected), rel=1e-12, abs=1e-300)


def test_rule_scores_on_known_images_equal_an_independent_computation(model: SiglipModel) -> None:
    definition = RuleDefinition(name="colours", prompts=("red", "crimson", "blue", "dog"), threshold=0.7)
    for colour in (RED, BLUE):
        image = model.embed_image(model_pixels(solid(colour)))
        prompts = model.embed_prompts(list(definition.prompts))
        similarities = dict(zip(definition.prompts, model.similarities(image, list(prompts)), strict=True))

        scored = score_rule(definition, similarities)

        expected = [expected_score(embedding_of_colour(colour), prompt) for prompt in definition.prompts]
        assert [p.prompt for p in scored.prompt_scores] == list(definition.prompts)
        for got, want in zip(scored.prompt_scores, expected, strict=True):
            assert got.score == pytest.approx(want, rel=1e-5, abs=1e-9)
        assert scored.score == pytest.approx(max(expected), rel=1e-5)
        assert scored.matched == (max(expected) >= 0.7)
    # The engineered middle score: cosine 0.16 with red.
    crimson = expected_score(embedding_of_colour(RED), "crimson")
    assert crimson == pytest.approx(1 / (1 + math.exp(-(0.16 * math.exp(LOGIT_SCALE) + LOGIT_BIAS))), rel=1e-9)
    assert 0.7 < crimson < 0.85


def test_a_threshold_of_zero_always_matches() -> None:
    definition = RuleDefinition(name="any", prompts=("x",), threshold=0.0)

    assert score_rule(definition, {"x": -1.0}).matched


# -- finding the files -----------------------------------------------------------------------------


def test_a_missing_model_file_is_named(tmp_path: Path, model_dir: Path) -> None:
    partial = tmp_path / "partial"
    build_tiny_model(partial)
    (partial / "text_model.onnx").unlink()

    with pytest.raises(ModelUnavailable, match=r"partial/text_model\.onnx is missing"):
        check_model_available(RuleInferenceSettings(model_directory=str(partial)))
    assert files_in(model_dir).vision == model_dir / "vision_model.onnx"


def test_the_onnx_files_may_sit_in_an_onnx_subdirectory(tmp_path: Path) -> None:
    directory = build_tiny_model(tmp_path / "hub-layout", onnx_subdirectory=True)

    files = files_in(directory)

    assert files.text == directory / "onnx" / "text_model.onnx"
    assert files.tokenizer == directory / "tokenizer.json"
    assert SiglipModel(files, threads=1).embed_prompts(["red"]).shape == (1, 4)


def test_the_default_search_names_konifers_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelUnavailable) as refused:
        check_model_available(RuleInferenceSettings())
    message = str(refused.value)
    assert "models/siglip2-base-patch16-224" in message
    assert "../models/siglip2-base-patch16-224" in message
    assert "/app/models/siglip2-base-patch16-224" in message

    build_tiny_model(tmp_path / "models" / "siglip2-base-patch16-224")
    assert check_model_available(RuleInferenceSettings()).vision.name == "vision_model.onnx"


def test_a_model_without_the_expected_input_is_refused(tmp_path: Path, model_dir: Path) -> None:
    broken = build_tiny_model(tmp_path / "broken")
    (broken / "vision_model.onnx").write_bytes((model_dir / "text_model.onnx").read_bytes())

    with pytest.raises(ModelUnavailable, match="pixel_values"):
        SiglipModel(files_in(broken), threads=1)
