-- Every same-prompt image pair whose true appeal differs, the more appealing image first:
-- the pairs a scorer is judged on against a simulated export's truth file.
-- Table: images (image_id, prompt_key, appeal). Equal (or unknown) appeal gives no pair,
-- since the truth cannot say which image is better.
-- $max_pairs_per_prompt (NULL: no cap) keeps prompts with many images from dominating; the
-- kept pairs are drawn by a hash of (seed, pair), never random(): same input, same pairs.
WITH oriented AS (
    SELECT
        better.prompt_key,
        better.image_id AS better_id,
        worse.image_id AS worse_id,
        hash($seed, better.image_id, worse.image_id) AS draw
    FROM images AS better
    JOIN images AS worse
        ON worse.prompt_key = better.prompt_key AND better.appeal > worse.appeal
)
SELECT prompt_key, better_id, worse_id
FROM oriented
QUALIFY $max_pairs_per_prompt IS NULL
    OR row_number() OVER (PARTITION BY prompt_key ORDER BY draw, better_id, worse_id)
        <= $max_pairs_per_prompt
ORDER BY prompt_key, better_id, worse_id
