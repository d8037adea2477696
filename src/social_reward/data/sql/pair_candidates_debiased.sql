-- Candidate pairs in which the confounders of raw remix counts cancel.
-- Table: image_features (image_features.sql). Parameters: params.yaml `pairs`.
--
-- Two images are comparable when they share the normalised prompt (caption popularity),
-- the influencer flag and, when $match_generator, the generator (generators change over
-- time), and when their creators' reach, log2(1 + followers), is within $reach_caliper of
-- each other. The lower image had its chance (exposure, impressions where logged) and at
-- most $max_lower_remixes collective remixes; the higher one has clearly more: at least
-- $count_ratio times the lower's plus $min_collective_remixes (with a lower of none, the
-- classic positive against a never-remixed negative). Each higher image is paired with the
-- comparable lower images published closest in time to it (at most $max_pairs_per_image,
-- within $max_publication_gap_days): exposure time and the feeds of the day match as
-- closely as the data allows.
--
-- The work stays linear in the number of images, however popular a prompt is: lower images
-- are found by rank in time within blocks, never by comparing every pair of a prompt. The
-- blocks add the lower image's remix count (a higher image joins the blocks of each count
-- it clearly beats) and reach buckets: a caliper is not a block, so the buckets are twice
-- the caliper wide, on two grids offset by half a bucket, and any two images within the
-- caliper share a bucket of one grid.
WITH eligible AS (
    SELECT
        image_key,
        prompt_key,
        log2(1 + followers) AS reach,
        is_influencer,
        CASE WHEN $match_generator THEN generator ELSE '' END AS generator_key,
        epoch(published_at) / 86400.0 AS published_day,
        collective_remixes AS remixes,
        collective_remixes >= $min_collective_remixes AS is_positive,
        collective_remixes <= $max_lower_remixes
            AND exposure_days >= $min_exposure_days
            AND (impressions IS NULL OR impressions >= $min_impressions) AS is_negative
    FROM image_features
    WHERE collective_remixes >= $min_collective_remixes
       OR (collective_remixes <= $max_lower_remixes AND exposure_days >= $min_exposure_days)
),
gridded AS (
    SELECT
        e.*,
        g.grid,
        floor(e.reach / (2 * $reach_caliper) + g.grid / 2)::INTEGER AS reach_bucket
    FROM eligible AS e
    CROSS JOIN (VALUES (0), (1)) AS g(grid)
),
positives AS (
    -- Each higher image once per remix count of lower images it clearly beats.
    SELECT g.*, c.lower_remixes
    FROM gridded AS g
    CROSS JOIN range(0, $max_lower_remixes + 1) AS c(lower_remixes)
    WHERE g.is_positive
      AND g.remixes >= $count_ratio * c.lower_remixes + $min_collective_remixes
),
negatives AS (
    SELECT
        *,
        remixes AS lower_remixes,
        row_number() OVER (
            PARTITION BY
                grid, prompt_key, reach_bucket, is_influencer, generator_key, lower_remixes
            ORDER BY published_day, image_key
        ) AS neg_rank,
        -- The same order with ties in time taken by descending key: walking back from a
        -- higher image then meets tied lower ones lowest key first, as the final ranking
        -- wants.
        row_number() OVER (
            PARTITION BY
                grid, prompt_key, reach_bucket, is_influencer, generator_key, lower_remixes
            ORDER BY published_day, image_key DESC
        ) AS neg_rank_before
    FROM gridded
    WHERE is_negative
),
negative_days AS (
    -- One row per block and moment, so that the ASOF match is unique when times tie.
    SELECT
        grid, prompt_key, reach_bucket, is_influencer, generator_key, lower_remixes,
        published_day, max(neg_rank) AS neg_rank
    FROM negatives
    GROUP BY ALL
),
anchored AS (
    -- Each higher image, and the rank of the last lower image of its block published before it.
    SELECT p.*, coalesce(n.neg_rank, 0) AS anchor
    FROM positives AS p
    ASOF LEFT JOIN negative_days AS n
      ON p.grid = n.grid
     AND p.lower_remixes = n.lower_remixes
     AND p.prompt_key = n.prompt_key
     AND p.reach_bucket = n.reach_bucket
     AND p.is_influencer = n.is_influencer
     AND p.generator_key = n.generator_key
     AND p.published_day >= n.published_day
),
ranked AS (
    -- Each lower image twice: ranked for the side after a higher one, and for the side before.
    SELECT
        grid, prompt_key, reach_bucket, is_influencer, generator_key, lower_remixes,
        image_key, reach, published_day, neg_rank AS side_rank, false AS before
    FROM negatives
    UNION ALL
    SELECT
        grid, prompt_key, reach_bucket, is_influencer, generator_key, lower_remixes,
        image_key, reach, published_day, neg_rank_before, true
    FROM negatives
),
around AS (
    -- The k lower images on either side of the anchor hold the k nearest in time.
    SELECT a.*, a.anchor + o.step AS neg_rank, o.step <= 0 AS before
    FROM anchored AS a
    CROSS JOIN range(1 - $max_pairs_per_image, $max_pairs_per_image + 1) AS o(step)
),
matched AS (
    -- A pair within the caliper can sit in a bucket of both grids: kept once.
    SELECT DISTINCT
        a.prompt_key,
        a.image_key AS pos_key,
        n.image_key AS neg_key,
        abs(a.published_day - n.published_day) AS gap_days
    FROM around AS a
    JOIN ranked AS n
      ON n.grid = a.grid
     AND n.lower_remixes = a.lower_remixes
     AND n.prompt_key = a.prompt_key
     AND n.reach_bucket = a.reach_bucket
     AND n.is_influencer = a.is_influencer
     AND n.generator_key = a.generator_key
     AND n.before = a.before
     AND n.side_rank = a.neg_rank
    WHERE abs(a.published_day - n.published_day) <= $max_publication_gap_days
      AND abs(a.reach - n.reach) <= $reach_caliper
)
SELECT prompt_key, pos_key, neg_key
FROM matched
QUALIFY row_number() OVER (PARTITION BY pos_key ORDER BY gap_days, neg_key)
    <= $max_pairs_per_image
