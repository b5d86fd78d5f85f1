// cuframes-pub: the reference publisher adapter (the conformance harness's default implementation
// under test, and the interop tests' publisher).
//
//   cuframes-pub --key K --frames N [--kind host|cuda|cuda_vmm_fd] [--slots S] [--max-subscribers
//   M]
//                [--width W --height H] [--bytes B] [--packets N --packet-bytes B --gop G]
//                [--codec C] [--max-proto V] [--wait-subscribers M] [--wait-timeout-ms T]
//                [--ack-timeout-ms T] [--linger-ms T] [--file-mode 0600|0660] [--allow-other-uids]
//                [--ring-bytes R] [--gate-at K] [--diag]
//
// Publishes N frames (and/or N packets, interleaved) with the deterministic content of
// adapter_common.h. Prints JSON lines on stdout:
//   {"event":"ready","key":K,"pid":P,"proto":V,"kind":"host"}   once the socket listens
//   {"event":"subscriber","index":I,"pid":P,"start_seq":S}       on each attach
//   {"event":"detached"|"evicted","index":I,"reason":"..."}
//   {"event":"frame","seq":n,"size":B,"checksum":"<fnv1a64>"}   per commit
//   {"event":"packet","seq":k,"size":s,"keyframe":bool,"checksum":"..."}
//   {"event":"done","frames":N,"packets":P}
//   {"event":"error","code":C,"name":"...","where":"..."}
//   {"event":"gate","seq":K}                                     --gate-at K, see below
// --gate-at K: before publishing frame/packet K (K = 0: before the codec parameters, after
// --wait-subscribers), print the gate event and wait for one line (or EOF) on stdin: a test holds
// the publisher there, still serving handshakes, until it has set up what it needs (e.g. a
// replacement subscriber attached), without sleeps. --diag: see adapter_common.h.
// --wait-subscribers M waits until M subscribers are ACTIVE at the same time (ADAPTER.md
// ADP-PUB-01) before publishing. After `done` it lingers while any subscriber is
// ACTIVE, at most --linger-ms (default 10000, ADP-PUB-02). --ring-bytes R sets the packet ring's
// capacity (ADP-PUB-03). SIGTERM ends the run with a clean shut-down and exit 0 (ADP-SIG-01).
// $CUFRAMES_MAX_PROTO caps the protocol version when --max-proto is absent.
// Exit codes: 0 ok, 1 usage, 2 protocol/peer error, 3 timeout, 4 verification, 77 unsupported.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../src/fault.h"
#include "adapter_cli.h"
#include "adapter_common.h"
#include "cuframes/cuframes.h"

#ifdef CUFRAMES_WITH_CUDA
#include <cuda_runtime.h>
#endif

using namespace cuframes::adapter;

namespace {

// Waits until `count` subscribers are ACTIVE at the same time (ADAPTER.md ADP-PUB-01), at most
// `timeout_ms`, in slices so that SIGTERM is seen. Returns OK (also when SIGTERM arrived: the
// caller checks TermRequested()) or the library's error.
int WaitActiveTogether(cuframes_publisher* pub, uint64_t count, uint64_t timeout_ms) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const int s = cuframes_pub_wait_subscribers(pub, static_cast<uint32_t>(count), 50);
    if (s != CUFRAMES_TIMEOUT || TermRequested()) return s == CUFRAMES_TIMEOUT ? CUFRAMES_OK : s;
    if (std::chrono::steady_clock::now() >= until) return CUFRAMES_TIMEOUT;
  }
}

void OnEvent(void*, const cuframes_pub_event* e) {
  const std::string idx = std::to_string(e->subscriber_index);
  if (e->kind == CUFRAMES_PUB_EVENT_ATTACHED) {
    EmitJson("\"event\":\"subscriber\",\"index\":" + idx + ",\"pid\":" + std::to_string(e->pid) +
             ",\"start_seq\":" + std::to_string(e->start_seq));
  } else {
    const char* kind = e->kind == CUFRAMES_PUB_EVENT_EVICTED ? "evicted" : "detached";
    EmitJson(std::string("\"event\":\"") + kind + "\",\"index\":" + idx +
             ",\"reason\":" + Quote(cuframes_status_name(static_cast<int>(e->reason))));
  }
}

uint64_t NextPow2(uint64_t v) {
  uint64_t p = 1;
  while (p < v)
    p <<= 1;
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  std::string key, kind = "host", mode = "0600";
  uint64_t frames = 0, slots = 4, max_subs = 8, width = 0, height = 0, bytes = 0, packets = 0;
  uint64_t packet_bytes = 1024, gop = 30, codec = 1, wait_subs = 0, wait_timeout = 10000;
  uint64_t ack_timeout = 2000, linger = 10000, gate_at = 0, ring_bytes = 0, max_proto = 0;
  bool diag = false;
  bool allow_other_uids = false;
  constexpr uint64_t kU32 = 0xffffffffull, kI32 = INT32_MAX;
  Cli cli("cuframes-pub",
          "The reference's publisher adapter (spec/ADAPTER.md): publishes frames and packets\n"
          "under --key in $CUFRAMES_SOCKET_DIR and prints one JSON event per line.");
  cli.Text("--key", &key, {}, "the key (RES-NAME-01)", true);
  cli.Number("--frames", &frames, 0, UINT64_MAX, "frames to publish, seq 1..N");
  cli.Text("--kind", &kind, {"host", "cuda", "cuda_vmm_fd"},
           "memory kind: HOST, CUDA_IPC (cuda) or CUDA_VMM_FD (cuda_vmm_fd)");
  cli.Number("--slots", &slots, 0, kU32, "slot_count");
  cli.Number("--max-subscribers", &max_subs, 0, kU32, "max_subscribers");
  cli.Number("--width", &width, 0, kU32, "nominal NV12 width (ADP-FMT-02)");
  cli.Number("--height", &height, 0, kU32, "nominal NV12 height (ADP-FMT-02)");
  cli.Number("--bytes", &bytes, 0, UINT64_MAX,
             "slot_bytes and payload_bytes (default W*H*3/2, else 4096)");
  cli.Number("--packets", &packets, 0, UINT64_MAX, "packets to publish, seq 1..N");
  cli.Number("--packet-bytes", &packet_bytes, 1, kU32, "max_packet_bytes");
  cli.Number("--gop", &gop, 0, UINT64_MAX, "keyframe every G packets");
  cli.Number("--codec", &codec, 0, kU32, "codec value of the codec parameters");
  cli.Number("--max-proto", &max_proto, 1, 0xffff,
             "highest proto_version spoken (default $CUFRAMES_MAX_PROTO, else the highest)");
  cli.Number("--wait-subscribers", &wait_subs, 0, UINT64_MAX,
             "wait for M subscribers ACTIVE at the same time before publishing (ADP-PUB-01)");
  cli.Number("--wait-timeout-ms", &wait_timeout, 0, kI32, "give up waiting after T ms");
  cli.Number("--ack-timeout-ms", &ack_timeout, 0, kI32, "ACK timeout (ACK-EVICT-01)");
  cli.Number("--linger-ms", &linger, 0, UINT64_MAX,
             "after done, keep serving active subscribers at most T ms (ADP-PUB-02)");
  cli.Text("--file-mode", &mode, {"0600", "0660"}, "mode of the segment, ring and socket");
  cli.Flag(
      "--allow-other-uids", &allow_other_uids,
      "serve subscribers of another uid (RES-PERM-02; with --file-mode 0660 they can connect)");
  cli.Number("--ring-bytes", &ring_bytes, 4096, UINT64_MAX,
             "packet ring capacity: a power of two (ADP-PUB-03)");
  cli.Number("--gate-at", &gate_at, 0, UINT64_MAX,
             "stop before frame K until a line arrives on stdin (tests)");
  cli.Flag("--diag", &diag, "add descriptor and mapping counts to every event");
  if (const int rc = cli.Parse(argc, argv); rc >= 0) return rc;
  const bool gate = cli.Given("--gate-at");
  uint32_t proto_cap = 0;
  if (!ProtoCap(cli.Given("--max-proto") ? &max_proto : nullptr, &proto_cap) ||
      (cli.Given("--ring-bytes") &&
       ((ring_bytes & (ring_bytes - 1)) != 0 || ring_bytes < 2 * (packet_bytes + 32)))) {
    // ADP-ARGS-01 / ADP-PUB-03: $CUFRAMES_MAX_PROTO malformed, or a ring too small for two of
    // the largest records or not a power of two.
    std::fprintf(stderr,
                 "cuframes-pub: --ring-bytes must be a power of two >= 2 * (--packet-bytes + 32), "
                 "and $CUFRAMES_MAX_PROTO a number in [1, 65535]\n");
    return kExitUsage;
  }
  if (kind == "cuda" && !CudaUsable()) {  // ADP-KIND-01
    EmitError(CUFRAMES_UNSUPPORTED, "--kind cuda: no CUDA kind in this build or no usable device");
    return kExitUnsupported;
  }
  if (kind == "cuda_vmm_fd" && !CudaVmmUsable()) {  // ADP-KIND-01 for the optional kind
    EmitError(CUFRAMES_UNSUPPORTED,
              "--kind cuda_vmm_fd: no CUDA kind in this build, no usable device, or the device "
              "cannot export POSIX file descriptor allocations");
    return kExitUnsupported;
  }
  InstallTermHandler();
  SetDiag(diag, key);
  if (bytes == 0) bytes = width != 0 && height != 0 ? width * height * 3 / 2 : 4096;

  cuframes_pub_options o;
  cuframes_pub_options_init(&o);
  o.key = key.c_str();
  o.memory_kind = kind == "cuda"          ? CUFRAMES_KIND_CUDA_IPC
                  : kind == "cuda_vmm_fd" ? CUFRAMES_KIND_CUDA_VMM_FD
                                          : CUFRAMES_KIND_HOST;
  o.width = static_cast<uint32_t>(width);
  o.height = static_cast<uint32_t>(height);
  o.pixel_format = width != 0 && height != 0 ? CUFRAMES_PIXEL_NV12 : CUFRAMES_PIXEL_OPAQUE;
  o.pitch = static_cast<uint32_t>(width);
  o.slot_bytes = bytes;
  o.slot_count = static_cast<uint32_t>(slots);
  o.max_subscribers = static_cast<uint32_t>(max_subs);
  o.ack_timeout_ms = static_cast<uint32_t>(ack_timeout);
  o.max_proto_version = proto_cap;
  o.file_mode = mode == "0660" ? 0660 : 0600;
  o.allow_other_uids = allow_other_uids ? 1 : 0;
  if (packets > 0) {
    o.packet_capacity =
        ring_bytes != 0 ? ring_bytes : NextPow2(std::max<uint64_t>(65536, 8 * (packet_bytes + 64)));
    o.max_packet_bytes = static_cast<uint32_t>(packet_bytes);
    o.codec = static_cast<uint32_t>(codec);
  }
  o.on_event = OnEvent;
  cuframes_publisher* pub = nullptr;
  int s = cuframes_pub_create(&o, &pub);
  if (s != CUFRAMES_OK) {
    EmitError(s, "create");
    return ExitCodeFor(s);
  }
  EmitJson("\"event\":\"ready\",\"key\":" + Quote(key) + ",\"pid\":" + std::to_string(getpid()) +
           ",\"proto\":" + std::to_string(proto_cap == 0 ? CUFRAMES_PROTO_VERSION_MAX : proto_cap) +
           ",\"kind\":" + Quote(kind));
  int exit_code = kExitOk;
  if (wait_subs > 0) {
    s = WaitActiveTogether(pub, wait_subs, wait_timeout);
    if (s != CUFRAMES_OK) {
      EmitError(s, "wait-subscribers");
      cuframes_pub_destroy(pub);
      return ExitCodeFor(s);
    }
  }
  auto wait_gate = [&](uint64_t i) {
    if (!gate || i != gate_at) return;
    EmitJson("\"event\":\"gate\",\"seq\":" + std::to_string(i));
    int ch = 0;
    while ((ch = std::getchar()) != EOF && ch != '\n') {}
  };
  wait_gate(0);
  if (packets > 0) {
    const std::string params = CodecParamsBytes(static_cast<uint32_t>(codec));
    s = cuframes_pub_set_codec_params(pub, static_cast<uint32_t>(codec), params.data(),
                                      static_cast<uint32_t>(params.size()));
    if (s != CUFRAMES_OK) {
      EmitError(s, "set_codec_params");
      cuframes_pub_destroy(pub);
      return ExitCodeFor(s);
    }
  }
  std::vector<uint8_t> staging(bytes);
  std::vector<uint8_t> packet(packet_bytes);
  const int32_t acquire_timeout = static_cast<int32_t>(ack_timeout + 10000);
  bool finished = !TermRequested();
  for (uint64_t i = 1; i <= std::max(frames, packets) && exit_code == kExitOk; ++i) {
    wait_gate(i);
    if (TermRequested()) {
      finished = false;
      break;
    }
    if (i <= frames) {
      cuframes_slot slot;
      // Acquire in short slices so that SIGTERM is seen while waiting for ACKs; the library's ACK
      // timeout runs from the first slice (it keeps the wait's start for the same frame).
      const auto until =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(acquire_timeout);
      do {
        s = cuframes_pub_acquire(pub, 50, &slot);
      } while (s == CUFRAMES_TIMEOUT && !TermRequested() &&
               std::chrono::steady_clock::now() < until);
      if (s == CUFRAMES_TIMEOUT && TermRequested()) {
        finished = false;
        break;
      }
      if (s != CUFRAMES_OK) {
        EmitError(s, "acquire");
        exit_code = ExitCodeFor(s);
        break;
      }
      // Two halves, so that the fault point "pub.frame.mid_write" leaves a half-written buffer.
      const uint64_t half = bytes / 2;
      if (kind == "host") {
        auto* dst = static_cast<uint8_t*>(slot.data);
        FillFrame(dst, half, slot.seq);
        CUFRAMES_FAULT_POINT("pub.frame.mid_write");
        for (uint64_t b = half; b < bytes; ++b)
          dst[b] = FrameByte(slot.seq, b);
      } else {
        FillFrame(staging.data(), bytes, slot.seq);
#ifdef CUFRAMES_WITH_CUDA
        auto stream = static_cast<cudaStream_t>(slot.cuda_stream);
        auto* dst = static_cast<uint8_t*>(slot.data);
        bool copied = cudaMemcpyAsync(dst, staging.data(), half, cudaMemcpyHostToDevice, stream) ==
                          cudaSuccess &&
                      cudaStreamSynchronize(stream) == cudaSuccess;
        if (copied) CUFRAMES_FAULT_POINT("pub.frame.mid_write");
        if (!copied ||
            cudaMemcpyAsync(dst + half, staging.data() + half, bytes - half, cudaMemcpyHostToDevice,
                            stream) != cudaSuccess ||
            cudaStreamSynchronize(stream) != cudaSuccess) {
          EmitError(CUFRAMES_CUDA, "cudaMemcpyAsync");
          exit_code = kExitPeer;
          break;
        }
#endif
      }
      const uint8_t* content =
          kind == "host" ? static_cast<const uint8_t*>(slot.data) : staging.data();
      const std::string sum = Hex64(Fnv1a64(content, bytes));
      cuframes_frame_info info{};
      info.timestamp_ns = static_cast<int64_t>(slot.seq) * 1000;
      info.width = o.width;
      info.height = o.height;
      info.pixel_format = o.pixel_format;
      info.pitch = o.pitch;
      info.payload_bytes = bytes;
      info.user_data = slot.seq;
      s = cuframes_pub_commit(pub, &info);
      if (s != CUFRAMES_OK) {
        EmitError(s, "commit");
        exit_code = ExitCodeFor(s);
        break;
      }
      EmitJson("\"event\":\"frame\",\"seq\":" + std::to_string(slot.seq) +
               ",\"size\":" + std::to_string(bytes) + ",\"checksum\":\"" + sum + "\"");
    }
    if (i <= packets) {
      const uint32_t size = PacketSize(i, static_cast<uint32_t>(packet_bytes));
      const bool key_frame = PacketIsKey(i, gop);
      FillPacket(packet.data(), size, i);
      s = cuframes_pub_publish_packet(pub, packet.data(), size, static_cast<int64_t>(i) * 3000,
                                      key_frame ? CUFRAMES_PACKET_KEYFRAME : 0u);
      if (s != CUFRAMES_OK) {
        EmitError(s, "publish_packet");
        exit_code = ExitCodeFor(s);
        break;
      }
      EmitJson("\"event\":\"packet\",\"seq\":" + std::to_string(i) + ",\"size\":" +
               std::to_string(size) + ",\"keyframe\":" + (key_frame ? "true" : "false") +
               ",\"checksum\":\"" + Hex64(Fnv1a64(packet.data(), size)) + "\"");
    }
  }
  // ADP-EVENT-02: `done` before the linger and before the shut-down begins.
  if (exit_code == kExitOk && finished) {
    EmitJson("\"event\":\"done\",\"frames\":" + std::to_string(frames) +
             ",\"packets\":" + std::to_string(packets));
  }
  // Linger while any subscriber is ACTIVE (ADP-PUB-02), bounded; SIGTERM cuts it short.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(linger);
  while (!TermRequested() && cuframes_pub_subscriber_count(pub) > 0 &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  cuframes_pub_destroy(pub);
  return exit_code;
}
