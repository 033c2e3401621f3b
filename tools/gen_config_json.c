/* config.json of a generated safetensors checkpoint (see gen_config_json.h). */
#include "gen_config_json.h"

void gen_write_config_json(FILE *f, const gen_config *c)
{
    fprintf(f,
            "{\n"
            "  \"architectures\": [\"LlamaForCausalLM\"],\n"
            "  \"model_type\": \"llama\",\n"
            "  \"hidden_size\": %u,\n"
            "  \"intermediate_size\": %u,\n"
            "  \"num_hidden_layers\": %u,\n"
            "  \"num_attention_heads\": %u,\n"
            "  \"num_key_value_heads\": %u,\n"
            "  \"head_dim\": %u,\n"
            "  \"vocab_size\": %u,\n"
            "  \"max_position_embeddings\": %u,\n"
            "  \"rms_norm_eps\": 1e-05,\n"
            "  \"rope_theta\": 500000.0,\n"
            "  \"rope_scaling\": null,\n"
            "  \"tie_word_embeddings\": %s,\n"
            "  \"torch_dtype\": \"%s\",\n"
            "  \"hidden_act\": \"silu\",\n"
            "  \"attention_bias\": false,\n"
            "  \"attention_dropout\": 0.0,\n"
            "  \"mlp_bias\": false,\n"
            "  \"bos_token_id\": 1,\n"
            "  \"eos_token_id\": 2,\n"
            "  \"initializer_range\": 0.02,\n"
            "  \"use_cache\": true\n"
            "}\n",
            c->hidden, c->intermediate, c->layers, c->heads, c->kv_heads, c->head_dim, c->vocab,
            c->max_position, c->tie_embeddings ? "true" : "false", gen_dtype_torch_name(c->dtype));
}
