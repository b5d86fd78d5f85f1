// capi_test: the C ABI: defaults, struct_size growth, NULL handling, status names, and a round
// trip through the C entry points only. Also links tests/c99_header_check.c (strict C99).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "cuframes/cuframes.h"
#include "status.h"

extern "C" int cuframes_c99_check(void);

namespace {

class CApi : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cuframes-capi-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::setenv("CUFRAMES_SOCKET_DIR", dir_.c_str(), 1);
    static int n = 0;
    key_ = "capi" + std::to_string(::getpid()) + "-" + std::to_string(n++);
  }
  void TearDown() override {
    ::rmdir(dir_.c_str());
    ::unsetenv("CUFRAMES_SOCKET_DIR");
  }
  std::string dir_;
  std::string key_;
};

TEST(CApiStatic, C99HeaderCompilesAndWorks) {
  EXPECT_EQ(cuframes_c99_check(), 1);
}

TEST(CApiStatic, StatusNamesMatchTheInternalTable) {
  for (int v = 0; v <= 25; ++v) {
    EXPECT_STREQ(cuframes_status_name(v), cuframes::StatusName(static_cast<cuframes::Status>(v)));
    EXPECT_STREQ(cuframes_strerror(v), cuframes::StatusText(static_cast<cuframes::Status>(v)));
  }
  EXPECT_STREQ(cuframes_status_name(CUFRAMES_PEER_CLOSED), "PEER_CLOSED");
  EXPECT_STREQ(cuframes_status_name(-1), "UNKNOWN");
  EXPECT_STREQ(cuframes_status_name(26), "UNKNOWN");
  EXPECT_EQ(cuframes_version(), 0x000200u);
}

TEST(CApiStatic, Defaults) {
  cuframes_pub_options po;
  std::memset(&po, 0xff, sizeof(po));
  cuframes_pub_options_init(&po);
  EXPECT_EQ(po.struct_size, sizeof(po));
  EXPECT_EQ(po.memory_kind, CUFRAMES_KIND_HOST);
  EXPECT_EQ(po.slot_count, 4u);
  EXPECT_EQ(po.ack_timeout_ms, 2000u);
  EXPECT_EQ(po.file_mode, 0600u);
  EXPECT_EQ(po.key, nullptr);
  cuframes_sub_options so;
  cuframes_sub_options_init(&so);
  EXPECT_EQ(so.struct_size, sizeof(so));
  EXPECT_EQ(so.kinds_mask, CUFRAMES_KIND_BIT(CUFRAMES_KIND_HOST));
}

TEST(CApiStatic, NullAndBadArguments) {
  cuframes_publisher* pub = nullptr;
  cuframes_subscriber* sub = nullptr;
  EXPECT_EQ(cuframes_pub_create(nullptr, &pub), CUFRAMES_INVALID_ARGUMENT);
  cuframes_pub_options po;
  cuframes_pub_options_init(&po);
  EXPECT_EQ(cuframes_pub_create(&po, &pub), CUFRAMES_INVALID_ARGUMENT) << "NULL key";
  po.key = "ok";
  EXPECT_EQ(cuframes_pub_create(&po, nullptr), CUFRAMES_INVALID_ARGUMENT);
  po.struct_size = 4;
  EXPECT_EQ(cuframes_pub_create(&po, &pub), CUFRAMES_INVALID_ARGUMENT) << "struct_size";
  cuframes_slot slot;
  EXPECT_EQ(cuframes_pub_acquire(nullptr, 0, &slot), CUFRAMES_INVALID_ARGUMENT);
  EXPECT_EQ(cuframes_pub_commit(nullptr, nullptr), CUFRAMES_INVALID_ARGUMENT);
  EXPECT_EQ(cuframes_pub_publish_packet(nullptr, nullptr, 0, 0, 0), CUFRAMES_INVALID_ARGUMENT);
  EXPECT_EQ(cuframes_pub_set_codec_params(nullptr, 0, nullptr, 0), CUFRAMES_INVALID_ARGUMENT);
  EXPECT_EQ(cuframes_pub_wait_subscribers(nullptr, 1, 0), CUFRAMES_INVALID_ARGUMENT);
  EXPECT_EQ(cuframes_pub_subscriber_count(nullptr), 0u);
  EXPECT_EQ(cuframes_sub_connect(nullptr, &sub), CUFRAMES_INVALID_ARGUMENT);
  cuframes_frame f;
  cuframes_packet p;
  EXPECT_EQ(cuframes_sub_next_frame(nullptr, 0, &f), CUFRAMES_INVALID_ARGUMENT);
  EXPECT_EQ(cuframes_sub_release(nullptr, &f), CUFRAMES_INVALID_ARGUMENT);
  EXPECT_EQ(cuframes_sub_next_packet(nullptr, 0, nullptr, 0, &p), CUFRAMES_INVALID_ARGUMENT);
  uint32_t size = 0;
  EXPECT_EQ(cuframes_sub_get_codec_params(nullptr, nullptr, 0, &size, nullptr, nullptr),
            CUFRAMES_INVALID_ARGUMENT);
  cuframes_pub_destroy(nullptr);
  cuframes_sub_close(nullptr);
}

TEST_F(CApi, RoundTrip) {
  cuframes_pub_options po;
  cuframes_pub_options_init(&po);
  po.key = key_.c_str();
  po.width = 16;
  po.height = 8;
  po.pixel_format = CUFRAMES_PIXEL_NV12;  // slot_bytes derived: 16*8*3/2
  po.packet_capacity = 1 << 16;
  po.max_packet_bytes = 1024;
  po.codec = CUFRAMES_CODEC_H264;
  cuframes_publisher* pub = nullptr;
  ASSERT_EQ(cuframes_pub_create(&po, &pub), CUFRAMES_OK);
  cuframes_sub_options so;
  cuframes_sub_options_init(&so);
  so.key = key_.c_str();
  so.want_packets = 1;
  cuframes_subscriber* sub = nullptr;
  ASSERT_EQ(cuframes_sub_connect(&so, &sub), CUFRAMES_OK);
  cuframes_sub_info info;
  ASSERT_EQ(cuframes_sub_get_info(sub, &info), CUFRAMES_OK);
  EXPECT_EQ(info.proto_version, CUFRAMES_PROTO_VERSION_MAX);
  EXPECT_EQ(info.slot_bytes, 192u);
  EXPECT_EQ(info.width, 16u);
  EXPECT_EQ(info.height, 8u);
  EXPECT_EQ(info.pixel_format, static_cast<uint32_t>(CUFRAMES_PIXEL_NV12));
  EXPECT_EQ(info.packet_ring, 1u);
  EXPECT_EQ(info.start_seq, 1u);
  EXPECT_EQ(cuframes_pub_subscriber_count(pub), 1u);

  cuframes_slot slot;
  ASSERT_EQ(cuframes_pub_acquire(pub, 1000, &slot), CUFRAMES_OK);
  EXPECT_EQ(slot.seq, 1u);
  EXPECT_EQ(slot.capacity, 192u);
  EXPECT_EQ(slot.memory_kind, CUFRAMES_KIND_HOST);
  std::memset(slot.data, 0x42, 192);
  cuframes_frame_info fi{};
  fi.payload_bytes = 100;
  fi.width = 16;
  fi.height = 8;
  fi.pixel_format = CUFRAMES_PIXEL_NV12;
  fi.flags = CUFRAMES_FRAME_END_OF_STREAM;
  fi.timestamp_ns = -5;
  fi.user_data = 0xfeed;
  ASSERT_EQ(cuframes_pub_commit(pub, &fi), CUFRAMES_OK);
  cuframes_frame f;
  ASSERT_EQ(cuframes_sub_next_frame(sub, 1000, &f), CUFRAMES_OK);
  EXPECT_EQ(f.seq, 1u);
  EXPECT_EQ(f.payload_bytes, 100u);
  EXPECT_EQ(f.flags, CUFRAMES_FRAME_END_OF_STREAM);
  EXPECT_EQ(f.timestamp_ns, -5);
  EXPECT_EQ(f.user_data, 0xfeedu);
  EXPECT_EQ(f.memory_kind, CUFRAMES_KIND_HOST);
  EXPECT_EQ(static_cast<const uint8_t*>(f.data)[99], 0x42);
  EXPECT_EQ(cuframes_sub_release(sub, &f), CUFRAMES_OK);
  EXPECT_EQ(cuframes_sub_next_frame(sub, 0, &f), CUFRAMES_AGAIN);

  ASSERT_EQ(cuframes_pub_set_codec_params(pub, CUFRAMES_CODEC_H264, "\x00\x00\x01\x67", 4),
            CUFRAMES_OK);
  uint8_t params[16];
  uint32_t size = 0, codec = 0, gen = 0;
  ASSERT_EQ(cuframes_sub_get_codec_params(sub, params, sizeof(params), &size, &codec, &gen),
            CUFRAMES_OK);
  EXPECT_EQ(size, 4u);
  EXPECT_EQ(codec, CUFRAMES_CODEC_H264);
  EXPECT_EQ(cuframes_sub_get_codec_params(sub, params, 2, &size, nullptr, nullptr),
            CUFRAMES_INVALID_ARGUMENT);
  EXPECT_EQ(size, 4u) << "size needed";
  ASSERT_EQ(cuframes_pub_publish_packet(pub, "abc", 3, 7, CUFRAMES_PACKET_KEYFRAME), CUFRAMES_OK);
  char buf[8];
  cuframes_packet p;
  ASSERT_EQ(cuframes_sub_next_packet(sub, 1000, buf, sizeof(buf), &p), CUFRAMES_OK);
  EXPECT_EQ(p.size, 3u);
  EXPECT_EQ(p.pts, 7);
  EXPECT_EQ(std::memcmp(buf, "abc", 3), 0);

  cuframes_pub_destroy(pub);
  EXPECT_EQ(cuframes_sub_next_frame(sub, 1000, &f), CUFRAMES_PEER_CLOSED);
  cuframes_sub_close(sub);
}

// PKT-READ-01: PEER_CLOSED comes once every packet is read. A recorder that is behind when the
// publisher closes (the end of a file) still gets the stream's last packets, then PEER_CLOSED.
TEST_F(CApi, PacketsWrittenBeforeCloseAreDeliveredBeforePeerClosed) {
  cuframes_pub_options po;
  cuframes_pub_options_init(&po);
  po.key = key_.c_str();
  po.slot_bytes = 64;
  po.packet_capacity = 1 << 16;
  po.max_packet_bytes = 1024;
  po.codec = CUFRAMES_CODEC_HEVC;
  cuframes_publisher* pub = nullptr;
  ASSERT_EQ(cuframes_pub_create(&po, &pub), CUFRAMES_OK);
  cuframes_sub_options so;
  cuframes_sub_options_init(&so);
  so.key = key_.c_str();
  so.want_packets = 1;
  cuframes_subscriber* sub = nullptr;
  ASSERT_EQ(cuframes_sub_connect(&so, &sub), CUFRAMES_OK);
  ASSERT_EQ(cuframes_pub_set_codec_params(pub, CUFRAMES_CODEC_HEVC, "\x00\x00\x00\x01\x40", 5),
            CUFRAMES_OK);
  for (int i = 1; i <= 3; ++i) {
    const char payload[1] = {static_cast<char>('a' + i)};
    ASSERT_EQ(cuframes_pub_publish_packet(pub, payload, 1, i * 3600,
                                          i == 1 ? CUFRAMES_PACKET_KEYFRAME : 0u),
              CUFRAMES_OK);
  }
  cuframes_pub_destroy(pub);
  char buf[8];
  cuframes_packet p;
  for (int i = 1; i <= 3; ++i) {
    ASSERT_EQ(cuframes_sub_next_packet(sub, 1000, buf, sizeof(buf), &p), CUFRAMES_OK) << i;
    EXPECT_EQ(p.seq, static_cast<uint64_t>(i));
    EXPECT_EQ(p.pts, i * 3600);
    EXPECT_EQ(p.params_generation, 1u);
    EXPECT_EQ(buf[0], static_cast<char>('a' + i));
  }
  EXPECT_EQ(cuframes_sub_next_packet(sub, 1000, buf, sizeof(buf), &p), CUFRAMES_PEER_CLOSED);
  EXPECT_EQ(cuframes_sub_next_packet(sub, 0, buf, sizeof(buf), &p), CUFRAMES_PEER_CLOSED);
  cuframes_sub_close(sub);
}

TEST_F(CApi, OlderCallerWithSmallerOptionsStruct) {
  // A caller built against a header whose options ended after `codec`: the rest defaults.
  cuframes_pub_options po;
  cuframes_pub_options_init(&po);
  po.key = key_.c_str();
  po.slot_bytes = 64;
  po.file_mode = 0777;  // beyond struct_size: must be ignored (default 0600 used)
  po.struct_size = offsetof(cuframes_pub_options, file_mode);
  cuframes_publisher* pub = nullptr;
  ASSERT_EQ(cuframes_pub_create(&po, &pub), CUFRAMES_OK);
  cuframes_pub_destroy(pub);
}

TEST_F(CApi, CudaKindWithoutCudaIsUnsupported) {
  if (cuframes_cuda_kind_built()) GTEST_SKIP() << "this build has the CUDA kind";
  cuframes_pub_options po;
  cuframes_pub_options_init(&po);
  po.key = key_.c_str();
  po.slot_bytes = 64;
  po.memory_kind = CUFRAMES_KIND_CUDA_IPC;
  cuframes_publisher* pub = nullptr;
  EXPECT_EQ(cuframes_pub_create(&po, &pub), CUFRAMES_UNSUPPORTED);
  cuframes_sub_options so;
  cuframes_sub_options_init(&so);
  so.key = key_.c_str();
  so.kinds_mask = CUFRAMES_KIND_BIT(CUFRAMES_KIND_CUDA_IPC);
  cuframes_subscriber* sub = nullptr;
  EXPECT_EQ(cuframes_sub_connect(&so, &sub), CUFRAMES_UNSUPPORTED);
}

TEST_F(CApi, VmmKindUnsupportedWhereNotUsable) {
  // Without the CUDA kinds, or without a device that exports POSIX file descriptors, creating a
  // CUDA_VMM_FD publisher is UNSUPPORTED; where it is usable, cuda_kind_test runs it.
  if (cuframes_cuda_vmm_usable(0)) GTEST_SKIP() << "CUDA_VMM_FD is usable on device 0 here";
  cuframes_pub_options po;
  cuframes_pub_options_init(&po);
  po.key = key_.c_str();
  po.slot_bytes = 64;
  po.memory_kind = CUFRAMES_KIND_CUDA_VMM_FD;
  cuframes_publisher* pub = nullptr;
  EXPECT_EQ(cuframes_pub_create(&po, &pub), CUFRAMES_UNSUPPORTED);
}

}  // namespace
