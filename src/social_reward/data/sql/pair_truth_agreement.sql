-- Share of pairs whose positive has the higher true appeal (ties count half), over the
-- pairs whose two images the truth file knows. Tables: pairs, truth (image_id, appeal).
SELECT
    count(*) AS pairs_with_truth,
    avg(CASE WHEN tp.appeal > tn.appeal THEN 1.0
             WHEN tp.appeal = tn.appeal THEN 0.5 ELSE 0.0 END) AS agreement
FROM pairs AS x
JOIN truth AS tp ON tp.image_id = x.pos_image_id
JOIN truth AS tn ON tn.image_id = x.neg_image_id
