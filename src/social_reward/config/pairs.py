"""Section `pairs` of params.yaml: how preference pairs are built from remixes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from social_reward.config.gates import EXPORT_GATES
from social_reward.config.section import Section


class SplitShares(Section):
    """Shares of prompt groups per split; the test split takes what is left."""

    train: float = Field(0.7, gt=0.0, lt=1.0)
    val: float = Field(0.1, ge=0.0, lt=1.0)

    @property
    def hand_size(self) -> int:
        """Prompts dealt out together, so that the smallest split gets one of each hand."""
        smallest = min(
            share for share in (self.train, self.val, 1 - self.train - self.val) if share
        )
        return math.ceil(1 / smallest - 1e-9)

    @model_validator(mode="after")
    def _leave_a_test_split(self) -> SplitShares:
        if self.train + self.val >= 1.0:
            raise ValueError(f"train + val must leave a test split, got {self.train + self.val}")
        return self


class PairsConfig(Section):
    """Stage `pairs`: preference pairs (prompt, positive image, negative image) in DuckDB."""

    SECTION = "pairs"

    validated_dir: Path = Path("artifacts/validated")
    out_dir: Path = Path("artifacts/pairs")
    metrics: Path = Path("metrics/pairs.json")
    gate_verdicts: tuple[Path, ...] = EXPORT_GATES  # required before reading the export
    truth: Path = Path("truth/appeal.parquet")  # agreement with it is reported when it exists
    mode: Literal["debiased", "naive"] = "debiased"
    # The higher image of a pair: collective remixes (distinct remixers other than the creator)
    # at least count_ratio x the lower image's plus min_collective_remixes.
    min_collective_remixes: int = Field(2, ge=1)
    count_ratio: float = Field(2.0, ge=1.0)
    max_lower_remixes: int = Field(4, ge=0)  # the lower image: at most this many, 0 = never
    min_exposure_days: float = Field(7.0, ge=0.0)  # it had this long to be remixed ...
    min_impressions: int = Field(100, ge=0)  # ... and was shown this often, where logged
    max_publication_gap_days: float = Field(30.0, gt=0.0)
    # Creators' reach, log2(1 + followers) (1.0 = a factor 2): pairs within reach_caliper
    # of each other are kept as they are; pairs up to max_reach_gap apart are kept in
    # balanced numbers, as many whose higher image's creator has more reach as fewer, within
    # bands reach_caliper wide: the reward cannot learn reach from them.
    reach_caliper: float = Field(0.75, gt=0.0)
    max_reach_gap: float = Field(4.0, gt=0.0)
    # True: both images from the same generator (by creators of the same influencer flag).
    # False: pairs across them too, kept as many won by each side: a generator's look (an
    # influencer's signature) then says nothing about appeal.
    match_generator: bool = False
    match_influencer: bool = False
    max_pairs_per_image: int = Field(10, gt=0)
    max_pairs_per_prompt: int = Field(200, gt=0)
    splits: SplitShares = SplitShares()
    seed: int = 0  # hash-based draws: sampling and splits
    threads: int | None = Field(None, gt=0)  # DuckDB threads (default: all cores)
    memory_limit: str = "3GB"  # DuckDB spills to disk beyond this ...
    spill_dir: Path = Path("artifacts/duckdb_spill")  # ... here (emptied when it is done)

    @model_validator(mode="after")
    def _gap_covers_the_caliper(self) -> PairsConfig:
        if self.max_reach_gap < self.reach_caliper:
            raise ValueError(
                f"max_reach_gap ({self.max_reach_gap}) must be at least reach_caliper "
                f"({self.reach_caliper}): pairs within the caliper are always kept"
            )
        return self
