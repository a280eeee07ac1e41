"""K-source tuples: same identity, target never a source, fixed evaluation tuples, CSV round trip."""
import numpy as np
import pytest

from rfgen_jax.data import tuples


IDS = ["a"] * 5 + ["b"] * 2 + ["c"] * 3 + ["a"] * 2 + ["d"] * 2


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_sampled_sources_same_identity_never_target(k):
  sampler = tuples.TupleSampler(IDS)
  rng = np.random.default_rng(0)
  for _ in range(20):
    for target in range(len(IDS)):
      src = sampler.sample_sources(target, k, rng)
      assert src.shape == (k,)
      assert target not in src
      assert all(IDS[s] == IDS[target] for s in src)
      others = len(sampler.others(target))
      if others >= k:
        assert len(set(src.tolist())) == k      # without replacement when possible


def test_lonely_identity_rejected():
  with pytest.raises(ValueError, match="fewer than 2"):
    tuples.TupleSampler(["a", "a", "b"])


@pytest.mark.parametrize("num_tuples", [0, 5, 40])
def test_test_tuples_fixed_nested_and_valid(num_tuples):
  rows3 = tuples.make_test_tuples(IDS, 3, seed=7, num_tuples=num_tuples)
  again = tuples.make_test_tuples(IDS, 3, seed=7, num_tuples=num_tuples)
  np.testing.assert_array_equal(rows3, again)
  assert not np.array_equal(rows3, tuples.make_test_tuples(IDS, 3, seed=8, num_tuples=num_tuples))
  assert len(rows3) == (num_tuples or len(IDS))
  if not num_tuples:
    np.testing.assert_array_equal(rows3[:, -1], np.arange(len(IDS)))
  for row in rows3:
    assert row[-1] not in row[:-1]
    assert {IDS[i] for i in row} == {IDS[row[-1]]}
  for k in (1, 2):   # sources for K are a prefix of those for K + 1, same targets
    rows = tuples.make_test_tuples(IDS, k, seed=7, num_tuples=num_tuples)
    np.testing.assert_array_equal(rows[:, :k], rows3[:, :k])
    np.testing.assert_array_equal(rows[:, -1], rows3[:, -1])


def test_csv_round_trip(tmp_path):
  names = [f"{i}_x.jpg" for i in range(len(IDS))]
  rows = [tuple(names[i] for i in r) for r in tuples.make_test_tuples(IDS, 2, seed=1)]
  path = tmp_path / "sub" / "tuples.csv"
  tuples.write_test_tuples_csv(str(path), rows)
  assert path.read_text().splitlines()[0] == "from_0,from_1,to"
  assert tuples.read_test_tuples_csv(str(path)) == rows
  path.write_text("from_0,to\na,b\nc\n")
  with pytest.raises(ValueError, match="line 3"):
    tuples.read_test_tuples_csv(str(path))
