-- Candidate pairs in which the confounders of raw remix counts cancel.
-- Table: image_features (image_features.sql). Parameters: params.yaml `pairs`.
--
-- Two images are comparable when they share the normalised prompt (caption popularity),
-- and, when $match_influencer, the influencer flag and, when $match_generator, the
-- generator (generators change over time, and each has a look). Otherwise pairs across
-- them are kept in balanced numbers, as many won by each side: an influencer's signature or
-- a generator's look then says nothing about which image won. The lower image had its chance (exposure, impressions where logged) and at most
-- $max_lower_remixes collective remixes; the higher one has clearly more: at least
-- $count_ratio times the lower's plus $min_collective_remixes (with a lower of none, the
-- classic positive against a never-remixed negative). Each higher image is paired with the
-- comparable lower images published closest in time to it (at most $max_pairs_per_image,
-- within $max_publication_gap_days): exposure time and the feeds of the day match as
-- closely as the data allows.
--
-- Creators' reach, log2(1 + followers): pairs within $reach_caliper of each other are kept;
-- pairs up to $max_reach_gap apart are kept in balanced numbers. In each band of reach
-- difference ($reach_caliper wide) as many pairs are kept (by hash) whose higher image's
-- creator has more reach as pairs whose higher image's creator has less: reach, which
-- raises counts whatever an image looks like, then says nothing about which image won.
--
-- The work stays linear in the number of images, however popular a prompt is: lower images
-- are found by rank in time within blocks, never by comparing every pair of a prompt. The
-- blocks add the lower image's remix count (a higher image joins the blocks of each count
-- it clearly beats) and reach buckets: a bound on the difference is not a block, so the
-- buckets are twice $max_reach_gap wide, on two grids offset by half a bucket, and any two
-- images within $max_reach_gap share a bucket of one grid. A block is keyed by one hash
-- (with the prompt and the count beside it: fewer join keys); the matched pairs recheck
-- what the hash stands for, so a collision (about 1e-15 per prompt) could only drop a pair,
-- never make a wrong one. A prompt matches at most $max_pairs_per_prompt higher images
-- (drawn by hash): the sample keeps no more pairs per prompt, and popular prompts would
-- otherwise cost most of the work.
WITH eligible AS (
    SELECT
        image_key,
        prompt_key,
        log2(1 + followers) AS reach,
        is_influencer,
        CASE WHEN $match_influencer THEN is_influencer ELSE false END AS influencer_key,
        generator,
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
drawn_positives AS (
    SELECT image_key
    FROM eligible
    WHERE is_positive
    QUALIFY row_number() OVER (
        PARTITION BY prompt_key ORDER BY hash($seed, 'higher', image_key), image_key
    ) <= $max_pairs_per_prompt
),
gridded AS (
    SELECT
        e.*,
        g.grid,
        hash(
            g.grid,
            floor(e.reach / (2 * $max_reach_gap) + g.grid / 2)::INTEGER,
            e.influencer_key,
            e.generator_key
        ) AS block
    FROM eligible AS e
    CROSS JOIN (VALUES (0), (1)) AS g(grid)
),
positives AS (
    -- Each higher image once per remix count of lower images it clearly beats.
    SELECT g.*, c.lower_remixes
    FROM gridded AS g
    CROSS JOIN range(0, $max_lower_remixes + 1) AS c(lower_remixes)
    WHERE g.is_positive
      AND g.image_key IN (SELECT image_key FROM drawn_positives)
      AND g.remixes >= $count_ratio * c.lower_remixes + $min_collective_remixes
),
negatives AS (
    SELECT
        *,
        remixes AS lower_remixes,
        row_number() OVER (
            PARTITION BY block, prompt_key, lower_remixes
            ORDER BY published_day, image_key
        ) AS neg_rank,
        -- The same order with ties in time taken by descending key: walking back from a
        -- higher image then meets tied lower ones lowest key first, as the final ranking
        -- wants.
        row_number() OVER (
            PARTITION BY block, prompt_key, lower_remixes
            ORDER BY published_day, image_key DESC
        ) AS neg_rank_before,
        -- Ranks past the block's ends hold no image: not looked up.
        count(*) OVER (PARTITION BY block, prompt_key, lower_remixes) AS block_negatives
    FROM gridded
    WHERE is_negative
),
negative_days AS (
    -- One row per block and moment, so that the ASOF match is unique when times tie.
    SELECT
        block, prompt_key, lower_remixes,
        published_day, max(neg_rank) AS neg_rank, any_value(block_negatives) AS block_negatives
    FROM negatives
    GROUP BY block, prompt_key, lower_remixes, published_day
),
anchored AS (
    -- Each higher image, and the rank of the last lower image of its block published before it.
    SELECT
        p.*,
        coalesce(n.neg_rank, 0) AS anchor,
        coalesce(n.block_negatives, $max_pairs_per_image) AS block_negatives
    FROM positives AS p
    ASOF LEFT JOIN negative_days AS n
      ON p.block = n.block
     AND p.lower_remixes = n.lower_remixes
     AND p.prompt_key = n.prompt_key
     AND p.published_day >= n.published_day
),
ranked AS (
    -- Each lower image twice: ranked for the side after a higher one, and for the side before.
    SELECT
        block, prompt_key, lower_remixes, is_influencer, influencer_key, generator_key, generator,
        image_key, reach, published_day, neg_rank AS side_rank, false AS before
    FROM negatives
    UNION ALL
    SELECT
        block, prompt_key, lower_remixes, is_influencer, influencer_key, generator_key, generator,
        image_key, reach, published_day, neg_rank_before, true
    FROM negatives
),
around AS (
    -- The k lower images on either side of the anchor hold the k nearest in time.
    SELECT a.*, a.anchor + o.step AS neg_rank, o.step <= 0 AS before
    FROM anchored AS a
    CROSS JOIN range(1 - $max_pairs_per_image, $max_pairs_per_image + 1) AS o(step)
    WHERE a.anchor + o.step BETWEEN 1 AND a.block_negatives
),
matched AS (
    -- A pair within reach of each other can sit in a bucket of both grids: kept once.
    SELECT DISTINCT
        a.prompt_key,
        a.image_key AS pos_key,
        n.image_key AS neg_key,
        abs(a.published_day - n.published_day) AS gap_days,
        a.reach - n.reach AS reach_gap,
        a.generator AS pos_generator,
        n.generator AS neg_generator,
        a.is_influencer AS pos_influencer,
        n.is_influencer AS neg_influencer
    FROM around AS a
    JOIN ranked AS n
      ON n.block = a.block
     AND n.lower_remixes = a.lower_remixes
     AND n.prompt_key = a.prompt_key
     AND n.before = a.before
     AND n.side_rank = a.neg_rank
    WHERE abs(a.published_day - n.published_day) <= $max_publication_gap_days
      AND abs(a.reach - n.reach) <= $max_reach_gap
      AND n.influencer_key = a.influencer_key
      AND n.generator_key = a.generator_key
),
nearest AS (
    SELECT
        *,
        -- Band 0: within the caliper (its bound included); band b: b to b + 1 calipers.
        greatest(ceil(abs(reach_gap) / $reach_caliper) - 1, 0) AS reach_band,
        sign(reach_gap) AS reach_direction
    FROM matched
    QUALIFY row_number() OVER (PARTITION BY pos_key ORDER BY gap_days, neg_key)
        <= $max_pairs_per_image
),
-- Balancing: within each stratum, pairs are ranked per side by hash, and each side keeps as
-- many as the smaller side has. Counts per stratum come from GROUP BY, not from windowed
-- counts (a FILTERed count over a whole partition is far slower in DuckDB).
reach_counts AS (
    SELECT
        reach_band,
        least(
            count(*) FILTER (WHERE reach_direction > 0),
            count(*) FILTER (WHERE reach_direction < 0)
        ) AS per_direction
    FROM nearest
    GROUP BY reach_band
),
reach_balanced AS (
    -- Beyond the caliper, each band keeps as many pairs of one direction as of the other.
    SELECT n.*
    FROM (
        SELECT
            *,
            row_number() OVER (
                PARTITION BY reach_band, reach_direction
                ORDER BY hash($seed, 'reach', pos_key, neg_key), pos_key, neg_key
            ) AS direction_rank
        FROM nearest
    ) AS n
    JOIN reach_counts AS c ON c.reach_band = n.reach_band
    WHERE n.reach_band = 0 OR n.reach_direction = 0 OR n.direction_rank <= c.per_direction
),
couples AS (
    SELECT
        *,
        least(pos_generator, neg_generator) AS first_generator,
        greatest(pos_generator, neg_generator) AS second_generator
    FROM reach_balanced
),
generator_counts AS (
    SELECT
        first_generator,
        second_generator,
        least(
            count(*) FILTER (WHERE pos_generator = first_generator),
            count(*) FILTER (WHERE pos_generator = second_generator)
        ) AS per_direction
    FROM couples
    WHERE first_generator <> second_generator
    GROUP BY first_generator, second_generator
),
generator_balanced AS (
    -- Pairs across two generators: as many won by each.
    SELECT g.*
    FROM (
        SELECT
            *,
            row_number() OVER (
                PARTITION BY first_generator, second_generator, pos_generator
                ORDER BY hash($seed, 'generator', pos_key, neg_key), pos_key, neg_key
            ) AS generator_rank
        FROM couples
    ) AS g
    LEFT JOIN generator_counts AS c
      ON c.first_generator = g.first_generator
     AND c.second_generator = g.second_generator
    WHERE g.pos_generator = g.neg_generator OR g.generator_rank <= c.per_direction
),
influencer_counts AS (
    SELECT least(
        count(*) FILTER (WHERE pos_influencer AND NOT neg_influencer),
        count(*) FILTER (WHERE neg_influencer AND NOT pos_influencer)
    ) AS per_direction
    FROM generator_balanced
),
influencer_balanced AS (
    -- Pairs of an influencer's image and another's: as many won by each side.
    SELECT
        *,
        row_number() OVER (
            PARTITION BY pos_influencer = neg_influencer, pos_influencer
            ORDER BY hash($seed, 'influencer', pos_key, neg_key), pos_key, neg_key
        ) AS influencer_rank
    FROM generator_balanced
)
SELECT i.prompt_key, i.pos_key, i.neg_key
FROM influencer_balanced AS i
CROSS JOIN influencer_counts AS c
WHERE i.pos_influencer = i.neg_influencer OR i.influencer_rank <= c.per_direction
