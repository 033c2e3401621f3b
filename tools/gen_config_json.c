/* config.json of a generated safetensors checkpoint (see gen_config_json.h). */
#include "gen_family.h"
#include "gen_config_json.h"

void gen_write_config_json(FILE *f, const gen_config *c)
{
    /* the family's keys (gen_family.c); a write error shows in ferror, which the caller checks */
    (void)gen_family_config_json(f, c, gen_dtype_torch_name(c->dtype));
}
