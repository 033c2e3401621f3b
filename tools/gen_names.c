/* Tensor names of the GGUF side of `hoist gen` (see gen_names.h). */
#include "gen_names.h"

#include <stdio.h>
#include <string.h>

int gen_gguf_name(const char *hf, char *out, size_t len)
{
    static const struct {
        const char *hf, *gguf;
    } top[] = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
        {"rope_freqs.weight", "rope_freqs.weight"},
    },
      layer[] = {
          {"input_layernorm.weight", "attn_norm.weight"},
          {"self_attn.q_proj.weight", "attn_q.weight"},
          {"self_attn.k_proj.weight", "attn_k.weight"},
          {"self_attn.v_proj.weight", "attn_v.weight"},
          {"self_attn.o_proj.weight", "attn_output.weight"},
          {"post_attention_layernorm.weight", "ffn_norm.weight"},
          {"mlp.gate_proj.weight", "ffn_gate.weight"},
          {"mlp.up_proj.weight", "ffn_up.weight"},
          {"mlp.down_proj.weight", "ffn_down.weight"},
          {"self_attn.q_proj.bias", "attn_q.bias"},
          {"self_attn.k_proj.bias", "attn_k.bias"},
          {"self_attn.v_proj.bias", "attn_v.bias"},
          {"self_attn.q_norm.weight", "attn_q_norm.weight"},
          {"self_attn.k_norm.weight", "attn_k_norm.weight"},
      };
    for (size_t i = 0; i < sizeof top / sizeof *top; i++)
        if (strcmp(hf, top[i].hf) == 0)
            return (size_t)snprintf(out, len, "%s", top[i].gguf) < len ? 0 : -1;
    unsigned l;
    int used = 0;
    if (sscanf(hf, "model.layers.%u.%n", &l, &used) != 1 || used == 0) return -1;
    for (size_t i = 0; i < sizeof layer / sizeof *layer; i++)
        if (strcmp(hf + used, layer[i].hf) == 0)
            return (size_t)snprintf(out, len, "blk.%u.%s", l, layer[i].gguf) < len ? 0 : -1;
    return -1;
}
