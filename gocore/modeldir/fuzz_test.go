package modeldir

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzRead reads model folders whose JSON files are arbitrary bytes: config.json, modules.json,
// 1_Pooling/config.json and sentence_bert_config.json. Read must return an error or a model
// whose sizes passed validation, never panic. Seeds: testdata/fuzz/FuzzRead and modelFiles.
func FuzzRead(f *testing.F) {
	base := modelFiles(`{"pooling_mode":"mean"}`)
	f.Add(base["config.json"], base["modules.json"], base["1_Pooling/config.json"], base["sentence_bert_config.json"])
	f.Add(`{"model_type":"bert","hidden_size":1e9}`, `[{"path":"../x","type":"a.Pooling"}]`, `{"pooling_mode":["mean","max"]}`, `{"max_seq_length":-1}`)
	f.Add(`{"hidden_size":-8,"num_attention_heads":0}`, `{}`, `{"pooling_mode_cls_token":"yes"}`, `[]`)
	f.Add(`null`, `null`, `null`, `null`)
	f.Fuzz(func(t *testing.T, config, modules, pooling, sbert string) {
		dir := t.TempDir()
		files := modelFiles(pooling)
		files["config.json"], files["modules.json"], files["sentence_bert_config.json"] = config, modules, sbert
		for name, content := range files {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
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
