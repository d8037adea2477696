-- Shared SQL macros. Loaded into every DuckDB connection of the pipeline.

-- The normalised prompt: what two captions must share to be "the same prompt".
-- Case, surrounding and repeated whitespace, and trailing full stops do not count.
CREATE OR REPLACE MACRO normalise_prompt(prompt) AS
    rtrim(regexp_replace(lower(trim(prompt)), '\s+', ' ', 'g'), '.');
