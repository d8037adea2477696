-- One row per image: its engagement and the confounders behind it.
-- Shared by the stages that describe images (profile, pairs, drift).
-- Tables: images, remixes, users (an export, or its validated copy).
-- Parameter $exported_at: the snapshot moment of the export (manifest.json).
WITH remixers AS (
    -- One row per (image, remixer): repeated remixes of one user collapse here.
    SELECT source_image_id AS image_id, remixer_id, count(*) AS remixes
    FROM remixes
    GROUP BY source_image_id, remixer_id
),
remix_counts AS (
    SELECT
        r.image_id,
        sum(r.remixes) AS raw_remixes,
        -- Collective evidence: distinct remixers other than the creator, so that
        -- self-remixes and one user's bursts count once or not at all.
        count(*) FILTER (WHERE r.remixer_id <> i.creator_id) AS collective_remixes,
        sum(r.remixes) FILTER (WHERE r.remixer_id = i.creator_id) AS self_remixes,
        count(*) FILTER (WHERE r.remixer_id <> i.creator_id AND remixer.is_influencer)
            AS influencer_remixes
    FROM remixers AS r
    JOIN images AS i ON i.image_id = r.image_id
    LEFT JOIN users AS remixer ON remixer.user_id = r.remixer_id
    GROUP BY r.image_id
),
prompts AS (
    -- Normalised once per distinct caption, not once per image.
    SELECT prompt, normalise_prompt(prompt) AS prompt_text, count(*) AS images
    FROM images
    GROUP BY prompt
),
prompt_groups AS (
    SELECT
        prompt_text,
        sum(images) AS prompt_images,
        -- Compact keys (here and image_key) for the set operations of pair building.
        row_number() OVER (ORDER BY prompt_text) AS prompt_key
    FROM prompts
    GROUP BY prompt_text
)
SELECT
    i.image_id,
    row_number() OVER (ORDER BY i.image_id) AS image_key,
    g.prompt_key,
    i.creator_id,
    g.prompt_text AS prompt,
    i.generator,
    i.file,
    i.width,
    i.height,
    i.published_at,
    u.followers,
    u.is_influencer,
    date_diff('second', i.published_at, $exported_at::TIMESTAMPTZ) / 86400.0 AS exposure_days,
    g.prompt_images,
    i.impressions,
    coalesce(c.raw_remixes, 0) AS raw_remixes,
    coalesce(c.collective_remixes, 0) AS collective_remixes,
    coalesce(c.self_remixes, 0) AS self_remixes,
    coalesce(c.influencer_remixes, 0) AS influencer_remixes,
    -- Known only where the platform logged impressions.
    CASE WHEN i.impressions > 0
        THEN coalesce(c.collective_remixes, 0) / i.impressions END AS remixes_per_impression
FROM images AS i
LEFT JOIN prompts AS p ON p.prompt = i.prompt
LEFT JOIN prompt_groups AS g ON g.prompt_text = p.prompt_text
LEFT JOIN users AS u ON u.user_id = i.creator_id
LEFT JOIN remix_counts AS c ON c.image_id = i.image_id;
