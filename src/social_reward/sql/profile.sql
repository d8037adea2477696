-- One row per image: its raw engagement and the confounders behind it.
-- Parameter $exported_at: the snapshot moment of the export (manifest.json).
WITH remix_counts AS (
    SELECT
        r.source_image_id AS image_id,
        count(*) AS raw_remixes,
        count(DISTINCT r.remixer_id) FILTER (WHERE r.remixer_id <> i.creator_id)
            AS collective_remixes,
        count(*) FILTER (WHERE r.remixer_id = i.creator_id) AS self_remixes
    FROM remixes AS r
    JOIN images AS i ON i.image_id = r.source_image_id
    GROUP BY r.source_image_id
)
SELECT
    i.image_id,
    i.creator_id,
    normalise_prompt(i.prompt) AS prompt,
    i.generator,
    u.followers,
    u.is_influencer,
    date_diff('second', i.published_at, $exported_at::TIMESTAMPTZ) / 86400.0 AS exposure_days,
    count(*) OVER (PARTITION BY normalise_prompt(i.prompt)) AS prompt_images,
    i.impressions,
    coalesce(c.raw_remixes, 0) AS raw_remixes,
    coalesce(c.collective_remixes, 0) AS collective_remixes,
    coalesce(c.self_remixes, 0) AS self_remixes
FROM images AS i
LEFT JOIN users AS u ON u.user_id = i.creator_id
LEFT JOIN remix_counts AS c ON c.image_id = i.image_id
ORDER BY i.image_id;
