-- The images the evaluation scores (train split: score distributions; test split: every
-- metric), with what the heuristic scorers and the segments need.
-- Tables: image_splits (the pairs stage's images.parquet), image_features.
SELECT
    s.image_id,
    s.split,
    s.prompt,
    s.path,
    s.prompt_key,
    f.followers AS creator_followers,
    f.exposure_days,
    f.generator,
    f.prompt_images
FROM image_splits AS s
JOIN image_features AS f ON f.image_id = s.image_id
WHERE s.split IN ('train', 'test')
ORDER BY s.image_id
