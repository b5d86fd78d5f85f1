/* c99_header_check.c: the public header compiles as strict C99 (-std=c99 -Wpedantic -Werror),
 * and its options initializers are usable from C. Linked into capi_test. */
#include "cuframes/cuframes.h"

int cuframes_c99_check(void);

int cuframes_c99_check(void) {
  cuframes_pub_options po;
  cuframes_sub_options so;
  cuframes_pub_options_init(&po);
  cuframes_sub_options_init(&so);
  return (int)(po.struct_size == sizeof(po) && so.struct_size == sizeof(so) &&
               cuframes_version() != 0u && CUFRAMES_UNSUPPORTED == 25);
}
