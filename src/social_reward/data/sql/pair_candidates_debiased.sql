-- Candidate pairs in which the confounders of raw remix counts cancel.
-- Table: image_features (image_features.sql). Parameters: params.yaml `pairs`.
--
-- Two images are comparable when they share a block: the normalised prompt (caption
-- popularity), the creator's reach bucket and influencer flag (reach) and, when
-- $match_generator, the generator (generators change over time). The positive carries
-- collective evidence; the negative had its chance (exposure, impressions where logged)
-- and no collective remix. Each positive is paired with the negatives of its block
-- published closest in time to it (at most $max_pairs_per_image, within
-- $max_publication_gap_days): exposure time and the feeds of the day match as closely as
-- the data allows. Finding them by rank keeps the work linear in the number of images,
-- however popular a prompt is.
WITH eligible AS (
    SELECT
        image_key,
        prompt_key,
        floor(log2(1 + followers) / $reach_bucket_width)::INTEGER AS reach_bucket,
        is_influencer,
        CASE WHEN $match_generator THEN generator ELSE '' END AS generator_key,
        epoch(published_at) / 86400.0 AS published_day,
        collective_remixes >= $min_collective_remixes AS is_positive,
        collective_remixes = 0
            AND exposure_days >= $min_exposure_days
            AND (impressions IS NULL OR impressions >= $min_impressions) AS is_negative
    FROM image_features
),
negatives AS (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY prompt_key, reach_bucket, is_influencer, generator_key
            ORDER BY published_day, image_key
        ) AS neg_rank,
        -- The same order with ties in time taken by descending key: walking back from a
        -- positive then meets tied negatives lowest key first, as the final ranking wants.
        row_number() OVER (
            PARTITION BY prompt_key, reach_bucket, is_influencer, generator_key
            ORDER BY published_day, image_key DESC
        ) AS neg_rank_before
    FROM eligible
    WHERE is_negative
),
negative_days AS (
    -- One row per block and moment, so that the ASOF match is unique when times tie.
    SELECT
        prompt_key, reach_bucket, is_influencer, generator_key, published_day,
        max(neg_rank) AS neg_rank
    FROM negatives
    GROUP BY ALL
),
anchored AS (
    -- Each positive, and the rank of the last negative of its block published before it.
    SELECT p.*, coalesce(n.neg_rank, 0) AS anchor
    FROM (SELECT * FROM eligible WHERE is_positive) AS p
    ASOF LEFT JOIN negative_days AS n
      ON p.prompt_key = n.prompt_key
     AND p.reach_bucket = n.reach_bucket
     AND p.is_influencer = n.is_influencer
     AND p.generator_key = n.generator_key
     AND p.published_day >= n.published_day
),
ranked AS (
    -- Each negative twice: ranked for the side after a positive, and for the side before.
    SELECT
        prompt_key, reach_bucket, is_influencer, generator_key, image_key, published_day,
        neg_rank AS side_rank, false AS before
    FROM negatives
    UNION ALL
    SELECT
        prompt_key, reach_bucket, is_influencer, generator_key, image_key, published_day,
        neg_rank_before, true
    FROM negatives
),
around AS (
    -- The k negatives on either side of the anchor hold the k nearest in time.
    SELECT a.*, a.anchor + o.step AS neg_rank, o.step <= 0 AS before
    FROM anchored AS a
    CROSS JOIN range(1 - $max_pairs_per_image, $max_pairs_per_image + 1) AS o(step)
)
SELECT
    a.prompt_key,
    a.image_key AS pos_key,
    n.image_key AS neg_key
FROM around AS a
JOIN ranked AS n
  ON n.prompt_key = a.prompt_key
 AND n.reach_bucket = a.reach_bucket
 AND n.is_influencer = a.is_influencer
 AND n.generator_key = a.generator_key
 AND n.before = a.before
 AND n.side_rank = a.neg_rank
WHERE abs(a.published_day - n.published_day) <= $max_publication_gap_days
QUALIFY row_number() OVER (
    PARTITION BY a.image_key
    ORDER BY abs(a.published_day - n.published_day), n.image_key
) <= $max_pairs_per_image
