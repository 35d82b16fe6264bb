package modeldir

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRead reads model folders whose JSON files are arbitrary bytes: config.json, modules.json,
// 1_Pooling/config.json and sentence_bert_config.json. Read must return an error or a model
// whose sizes passed validation, never panic. The folder lives in memory (readFile, stat).
// Seeds: testdata/fuzz/FuzzRead and the ones added here.
func FuzzRead(f *testing.F) {
	base := modelFiles(`{"pooling_mode":"mean"}`)
	f.Add(base["config.json"], base["modules.json"], base["1_Pooling/config.json"], base["sentence_bert_config.json"])
	f.Add(`{"model_type":"bert","hidden_size":1e9}`, `[{"path":"../x","type":"a.Pooling"}]`, `{"pooling_mode":["mean","max"]}`, `{"max_seq_length":-1}`)
	f.Add(`{"hidden_size":-8,"num_attention_heads":0}`, `{}`, `{"pooling_mode_cls_token":"yes"}`, `[]`)
	f.Add(`null`, `null`, `null`, `null`)
	defer func(r func(string) ([]byte, error), s func(string) (fs.FileInfo, error)) { readFile, stat = r, s }(readFile, stat)
	const dir = "/fuzz/model"
	files := map[string][]byte{}
	readFile = func(p string) ([]byte, error) {
		if b, ok := files[p]; ok {
			return b, nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	stat = func(p string) (fs.FileInfo, error) {
		if _, ok := files[p]; ok {
			return os.Stat(".") // any FileInfo: callers only test the error
		}
		return nil, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
	}
	f.Fuzz(func(t *testing.T, config, modules, pooling, sbert string) {
		clear(files)
		contents := modelFiles(pooling)
		contents["config.json"], contents["modules.json"], contents["sentence_bert_config.json"] = config, modules, sbert
		for name, c := range contents {
			files[filepath.Join(dir, name)] = []byte(c)
		}
		m, err := Read(dir)
		if err != nil {
			return
		}
		if err := m.Config.Validate("config.json"); err != nil {
			t.Fatalf("Read accepted a config Validate refuses: %v", err)
		}
		if m.MaxSeqLength <= 0 || m.MaxSeqLength > m.Config.MaxPositionEmbeddings {
			t.Fatalf("max_seq_length %d with %d positions", m.MaxSeqLength, m.Config.MaxPositionEmbeddings)
		}
	})
}
