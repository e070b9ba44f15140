-- What each stored rendition is beyond its size: Konifer's colour-space name
-- (attributes.colorSpace) and the EXIF orientation its bytes carry, which lets `r=auto`
-- on an upright original be the original itself. NULL for rows stored before this:
-- their colour space is answered as "unknown" and `r=auto` renders as it always did.
ALTER TABLE variant ADD COLUMN color_space text;
ALTER TABLE variant ADD COLUMN orientation smallint;
