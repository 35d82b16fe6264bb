package cli

import (
	"encoding/json"
	"flag"
)

func runInfo(args []string, env Env) error {
	fs := flag.NewFlagSet("info", flag.ContinueOnError)
	var m modelFlags
	m.register(fs)
	if err := parse(fs, args, env); err != nil {
		return err
	}
	enc, err := m.load(env)
	if err != nil {
		return err
	}
	defer enc.Close()
	md := enc.Model
	out := json.NewEncoder(env.Stdout)
	out.SetIndent("", "  ")
	return out.Encode(map[string]any{
		"model_dir": md.Dir, "source": md.Source, "model_type": md.Config.ModelType,
		"dim": enc.Dim(), "max_seq_length": md.MaxSeqLength, "pooling": md.Pooling.String(),
		"normalize": md.Normalize, "include_prompt": md.IncludePrompt, "prompts": md.Prompts,
		"default_prompt_name": md.DefaultPromptName, "similarity_fn_name": md.Similarity,
		"device": enc.Device(), "notes": enc.Notes,
	})
}
