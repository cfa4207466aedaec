"""``mlffd demo`` and ``mlffd study`` refuse a file or an unusable folder as their output folder, in one line."""

import pytest


@pytest.mark.parametrize("command", ["demo", "study"])
def test_output_folder_that_is_a_file(command, tmp_path, mlffd):
    output = tmp_path / "out"
    output.write_text("precious")
    for path, fragment in ((output, "is a file"), (output / "deeper", "is a file, not a folder")):
        result = mlffd(command, "--time", "0.01", "-o", path, "--overwrite" if command == "demo" else "--quiet")
        assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
        assert fragment in result.err and "Traceback" not in result.err
    assert output.read_text() == "precious"
