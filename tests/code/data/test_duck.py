"""The DuckDB connection every stage opens: its memory limit and where it spills."""

from pathlib import Path

from social_reward.config.pairs import PairsConfig
from social_reward.data.duck import connect


def test_a_query_larger_than_the_memory_limit_spills_into_the_spill_dir(tmp_path: Path):
    spill = tmp_path / "spill"
    connection = connect(threads=1, memory_limit="64MB", spill_dir=spill)
    setting = "SELECT current_setting('temp_directory'), current_setting('memory_limit')"
    directory, limit = connection.execute(setting).fetchone()
    assert Path(directory) == spill and limit.startswith("61")  # 64 MB in MiB

    # A sort of about 200 MB of rows: larger than the limit, so DuckDB writes to the spill
    # folder (seen while the result is held) and still answers.
    connection.execute(
        "CREATE TEMP TABLE wide AS SELECT i, md5(i::VARCHAR) || md5((i + 1)::VARCHAR) AS s "
        "FROM range(2500000) t(i)"
    )
    result = connection.execute("SELECT s FROM wide ORDER BY s DESC")
    first = result.fetchone()
    spilled = list(spill.iterdir())
    assert first is not None and spilled, "nothing spilled: the test no longer exceeds the limit"
    connection.close()


def test_pair_building_spills_outside_every_dvc_output_by_default():
    config = PairsConfig()
    assert config.spill_dir.parts[0] == "artifacts"
    assert not config.spill_dir.is_relative_to(config.out_dir)
