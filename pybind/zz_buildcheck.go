// THROWAWAY (build chain probe, written by the build-chain helper): delete once the real
// bindings exist. It links the Rust tokenizer through cgo and runs it, so a passing
// `python -c "import goembed._native as n; print(n.BuildCheck())"` proves the whole chain.
package pybind

import (
	"fmt"

	"github.com/daulet/tokenizers"
)

const tinyTokenizer = `{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
"normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
"model":{"type":"WordLevel","vocab":{"[UNK]":0,"hello":1,"world":2},"unk_token":"[UNK]"}}`

// BuildCheck returns "ok" when the tokenizer library is linked and works.
func BuildCheck() string {
	tk, err := tokenizers.FromBytes([]byte(tinyTokenizer))
	if err != nil {
		return "tokenizer: " + err.Error()
	}
	defer tk.Close()
	ids, _ := tk.Encode("hello world", false)
	if len(ids) != 2 || ids[0] != 1 || ids[1] != 2 {
		return fmt.Sprintf("tokenizer: unexpected ids %v", ids)
	}
	return "ok"
}
