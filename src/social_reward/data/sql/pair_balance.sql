-- How the pairs sit on each confounder: the share of pairs in which the positive image
-- has more of it than the negative, ties counting half, so that 0.5 means balanced.
-- Tables: pairs (pos_image_id, neg_image_id, generator_side), image_features.
SELECT
    count(*) AS pairs,
    avg(CASE WHEN p.followers > n.followers THEN 1.0
             WHEN p.followers = n.followers THEN 0.5 ELSE 0.0 END) AS positive_more_followers,
    avg(CASE WHEN p.is_influencer AND NOT n.is_influencer THEN 1.0
             WHEN p.is_influencer = n.is_influencer THEN 0.5 ELSE 0.0 END) AS positive_influencer,
    avg(CASE WHEN p.published_at < n.published_at THEN 1.0
             WHEN p.published_at = n.published_at THEN 0.5 ELSE 0.0 END)
        AS positive_published_earlier,
    avg(CASE WHEN p.prompt_images > n.prompt_images THEN 1.0
             WHEN p.prompt_images = n.prompt_images THEN 0.5 ELSE 0.0 END)
        AS positive_more_popular_prompt,
    avg((p.generator = n.generator)::DOUBLE) AS same_generator,
    avg((x.generator_side + 1) / 2.0) AS positive_newer_generator,
    avg(abs(epoch(p.published_at) - epoch(n.published_at)) / 86400.0)
        AS mean_publication_gap_days
FROM pairs AS x
JOIN image_features AS p ON p.image_id = x.pos_image_id
JOIN image_features AS n ON n.image_id = x.neg_image_id
