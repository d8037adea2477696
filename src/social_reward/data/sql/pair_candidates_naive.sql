-- Candidate pairs from raw remix counts, with none of the confounder controls: the
-- ablation that shows what debiasing buys. Table: image_features (image_features.sql).
--
-- Images of one normalised prompt (the pair's row format needs it) are put in a hash
-- order; each image meets the next $max_pairs_per_image images of that order, and the
-- one with more raw remixes is the positive (ties give no pair).
WITH ordered AS (
    SELECT
        image_key,
        prompt_key,
        raw_remixes,
        row_number() OVER (PARTITION BY prompt_key ORDER BY hash($seed, image_key), image_key)
            AS draw_rank
    FROM image_features
),
met AS (
    SELECT a.prompt_key, a.image_key AS a_key, a.raw_remixes AS a_raw, b.image_key AS b_key,
        b.raw_remixes AS b_raw
    FROM ordered AS a
    CROSS JOIN range(1, $max_pairs_per_image + 1) AS o(step)
    JOIN ordered AS b ON b.prompt_key = a.prompt_key AND b.draw_rank = a.draw_rank + o.step
    WHERE a.raw_remixes <> b.raw_remixes
)
SELECT
    prompt_key,
    CASE WHEN a_raw > b_raw THEN a_key ELSE b_key END AS pos_key,
    CASE WHEN a_raw > b_raw THEN b_key ELSE a_key END AS neg_key
FROM met
