"""``mlffd bench`` writes safely: never over its saved measurements, one line for a folder or file mix-up."""

import hashlib
import json

from test_bench_report import synthetic_result


def test_bench_refuses_its_input_and_mixed_up_paths(tmp_path, mlffd):
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps(synthetic_result().to_dict()))
    before = hashlib.sha256(saved.read_bytes()).hexdigest()
    for output, fragment in ((saved, "is the input"), (tmp_path, "is a directory")):
        result = mlffd("bench", "--from-json", saved, "-o", output, "--overwrite")
        assert result.code == 2 and len(result.err.strip().splitlines()) == 1 and fragment in result.err, result.err
    (tmp_path / "img").write_text("a file where the plots go")
    result = mlffd("bench", "--from-json", saved, "-o", tmp_path / "bench.md")
    assert result.code == 2 and "is a file, not a folder" in result.err, result.err
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == before
    assert not (tmp_path / "bench.md").exists()
    assert [p.name for p in tmp_path.rglob("*") if ".partial" in p.name] == []
