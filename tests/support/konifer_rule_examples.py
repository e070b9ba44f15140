"""A konifer.conf made of Konifer's own upload-rules examples, as its documentation writes them."""

# From Konifer's docs/concepts/upload-rules.md, the configuration reference and its site, unchanged.
KONIFER_EXAMPLES = """
rule-definitions {
  "blood-and-gore" {
    prompts = [
      "graphic visible blood",
      "open wound with blood",
      "bloody injury scene",
      "gore and severe injury"
    ]
    threshold = 0.72
  }
  "profile-photo" {
    prompts = [
      "a clear portrait photo of one person",
      "a headshot of a person",
      "a face centered in a profile picture"
    ]
    threshold = 0.68
  }
  "product-photo" {
    prompts = [
      "a clean catalog image of a product",
      "a product photo on a plain background"
    ]
    threshold = 0.66
  }
}
api {
  rule-evaluation {
    enabled = true
  }
}
paths {
  "/public/uploads/**" {
    upload-ruleset {
      default = accept
      reject-rules = [
        {
          rule = "blood-and-gore"
          violation-response = "Upload rejected by content policy"
        }
      ]
    }
  }
  "/users/*/avatar" {
    upload-ruleset {
      default = reject
      accept-rules = [
        { rule = "profile-photo" }
      ]
    }
  }
  "/catalog/products/**" {
    upload-ruleset {
      default = reject
      accept-rules = [ { rule = "product-photo" } ]
      modify-rules = [ { rule = "product-photo", labels { "content-type" = "product-photo" } } ]
    }
  }
}
"""
