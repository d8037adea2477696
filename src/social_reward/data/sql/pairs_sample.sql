-- Capped, deterministic sample of the candidate pairs, with their split.
-- Tables: candidates (prompt_key, pos_key, neg_key), image_features, images (validated,
-- with `path`: the file's path from the project root).
-- Each pair also says on which side of the recorded confounders its positive sits
-- (`generator_side`: +1 when the positive's generator is the newer one, -1 the older, 0 the
-- same; `influencer_side`: +1 when only the positive's creator is flagged, -1 only the
-- negative's, 0 neither or both): the trainer keeps the reward neutral across them.
-- Sampling draws from a hash of (seed, pair), never random(): same input, same pairs.
-- Caps per image keep one image from dominating, caps per prompt keep popular prompts
-- from dominating. Splits are drawn per prompt, so no prompt and no image crosses splits.
WITH generator_debut AS (
    -- A generator is newer than another when its first image came later.
    SELECT generator, min(published_at) AS debut FROM image_features GROUP BY generator
),
drawn AS (
    SELECT *, hash($seed, pos_key, neg_key) AS draw FROM candidates
),
per_positive AS (
    SELECT * FROM drawn
    QUALIFY row_number() OVER (PARTITION BY pos_key ORDER BY draw, neg_key)
        <= $max_pairs_per_image
),
per_negative AS (
    SELECT * FROM per_positive
    QUALIFY row_number() OVER (PARTITION BY neg_key ORDER BY draw, pos_key)
        <= $max_pairs_per_image
),
per_prompt AS (
    SELECT * FROM per_negative
    QUALIFY row_number() OVER (PARTITION BY prompt_key ORDER BY draw, pos_key, neg_key)
        <= $max_pairs_per_prompt
),
prompt_sizes AS (
    SELECT prompt_key, count(*) AS pairs, hash($seed, 'split', prompt_key) AS draw
    FROM per_prompt
    GROUP BY prompt_key
),
hands AS (
    -- Stratified by size, so that each split gets its share of the pairs however unevenly
    -- they spread over prompts: prompts ranked by their number of pairs are dealt out in
    -- hands of $hand_size, and each hand is split by the shares in a hash order.
    SELECT
        prompt_key,
        draw,
        (row_number() OVER (ORDER BY pairs DESC, draw, prompt_key) - 1) // $hand_size AS hand
    FROM prompt_sizes
),
split_of_prompt AS (
    SELECT
        prompt_key,
        (row_number() OVER (PARTITION BY hand ORDER BY draw, prompt_key) - 0.5)
            / count(*) OVER (PARTITION BY hand) AS position
    FROM hands
)
SELECT
    CASE
        WHEN s.position < $train_share THEN 'train'
        WHEN s.position < $train_share + $val_share THEN 'val'
        ELSE 'test'
    END AS split,
    c.prompt_key,
    p.prompt,
    p.image_id AS pos_image_id,
    n.image_id AS neg_image_id,
    pos_image.path AS pos_path,
    neg_image.path AS neg_path,
    sign(epoch(pos_debut.debut) - epoch(neg_debut.debut))::TINYINT AS generator_side,
    (p.is_influencer::TINYINT - n.is_influencer::TINYINT)::TINYINT AS influencer_side
FROM per_prompt AS c
JOIN split_of_prompt AS s ON s.prompt_key = c.prompt_key
JOIN image_features AS p ON p.image_key = c.pos_key
JOIN image_features AS n ON n.image_key = c.neg_key
JOIN images AS pos_image ON pos_image.image_id = p.image_id
JOIN images AS neg_image ON neg_image.image_id = n.image_id
JOIN generator_debut AS pos_debut ON pos_debut.generator = p.generator
JOIN generator_debut AS neg_debut ON neg_debut.generator = n.generator
