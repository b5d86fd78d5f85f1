/* consumer.c: a C99 program built against an *installed* libcuframes (CMake package and
 * pkg-config, see run_install_consumer.sh). It hands one HOST frame from a publisher to a
 * subscriber in the same process and checks every byte, so a missing symbol, a wrong include
 * path or a broken SONAME fails here rather than in a user's build. Exit 0 on success. */
#include <cuframes/cuframes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CHECK(call)                                                         \
  do {                                                                      \
    int rc_ = (call);                                                       \
    if (rc_ != CUFRAMES_OK) {                                               \
      fprintf(stderr, "%s failed: %s\n", #call, cuframes_status_name(rc_)); \
      return 1;                                                             \
    }                                                                       \
  } while (0)

int main(void) {
  char key[64];
  snprintf(key, sizeof key, "install-consumer-%ld", (long)getpid());

  cuframes_pub_options po;
  cuframes_pub_options_init(&po);
  po.key = key;
  po.width = 64;
  po.height = 16;
  po.pixel_format = CUFRAMES_PIXEL_GRAY8;
  cuframes_publisher* pub = NULL;
  CHECK(cuframes_pub_create(&po, &pub));

  cuframes_sub_options so;
  cuframes_sub_options_init(&so);
  so.key = key;
  cuframes_subscriber* sub = NULL;
  CHECK(cuframes_sub_connect(&so, &sub));

  cuframes_slot slot;
  CHECK(cuframes_pub_acquire(pub, 2000, &slot));
  unsigned char* dst = (unsigned char*)slot.data;
  for (int i = 0; i < 64 * 16; ++i)
    dst[i] = (unsigned char)(i * 7 + 3);
  cuframes_frame_info info;
  memset(&info, 0, sizeof info);
  info.width = 64;
  info.height = 16;
  info.pixel_format = CUFRAMES_PIXEL_GRAY8;
  info.pitch = 64;
  info.payload_bytes = 64 * 16;
  CHECK(cuframes_pub_commit(pub, &info));

  cuframes_frame frame;
  CHECK(cuframes_sub_next_frame(sub, 2000, &frame));
  const unsigned char* src = (const unsigned char*)frame.data;
  for (int i = 0; i < 64 * 16; ++i) {
    if (src[i] != (unsigned char)(i * 7 + 3)) {
      fprintf(stderr, "byte %d: got %u\n", i, src[i]);
      return 1;
    }
  }
  CHECK(cuframes_sub_release(sub, &frame));
  cuframes_sub_close(sub);
  cuframes_pub_destroy(pub);
  printf("cuframes %u.%u.%u: frame 1 delivered intact\n", cuframes_version() >> 16,
         (cuframes_version() >> 8) & 0xffu, cuframes_version() & 0xffu);
  return 0;
}
