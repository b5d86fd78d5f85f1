// cuframes-pub: the reference publisher adapter (the conformance harness's default implementation
// under test, and the interop tests' publisher).
//
//   cuframes-pub --key K --frames N [--kind host|cuda] [--slots S] [--max-subscribers M]
//                [--width W --height H] [--bytes B] [--packets N --packet-bytes B --gop G]
//                [--codec C] [--max-proto V] [--wait-subscribers M] [--wait-timeout-ms T]
//                [--ack-timeout-ms T] [--linger-ms T] [--file-mode 0600|0660]
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

void Usage() {
  std::fprintf(stderr,
               "usage: cuframes-pub --key K --frames N [--kind host|cuda] [--slots S]\n"
               "  [--max-subscribers M] [--width W --height H] [--bytes B]\n"
               "  [--packets N --packet-bytes B --gop G --codec C] [--max-proto V]\n"
               "  [--wait-subscribers M] [--wait-timeout-ms T] [--ack-timeout-ms T]\n"
               "  [--linger-ms T] [--file-mode 0600|0660] [--ring-bytes R] [--gate-at K]\n"
               "  [--diag]\n");
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv,
                 {"key",
                  "frames",
                  "kind",
                  "slots",
                  "max-subscribers",
                  "width",
                  "height",
                  "bytes",
                  "packets",
                  "packet-bytes",
                  "gop",
                  "codec",
                  "max-proto",
                  "wait-subscribers",
                  "wait-timeout-ms",
                  "ack-timeout-ms",
                  "linger-ms",
                  "file-mode",
                  "gate-at",
                  "ring-bytes"},
                 {"diag"}, &args) ||
      !args.Has("key")) {
    Usage();
    return kExitUsage;
  }
  uint64_t frames, slots, max_subs, width, height, bytes, packets, packet_bytes, gop, codec;
  uint64_t wait_subs, wait_timeout, ack_timeout, linger, gate_at, ring_bytes;
  const bool gate = args.Has("gate-at");
  uint32_t proto_cap = 0;
  const bool ok = args.U64("frames", 0, &frames) && args.U64("slots", 4, &slots) &&
                  args.U64("max-subscribers", 8, &max_subs) && args.U64("width", 0, &width) &&
                  args.U64("height", 0, &height) && args.U64("bytes", 0, &bytes) &&
                  args.U64("packets", 0, &packets) &&
                  args.U64("packet-bytes", 1024, &packet_bytes) && args.U64("gop", 30, &gop) &&
                  args.U64("codec", 1, &codec) && args.U64("wait-subscribers", 0, &wait_subs) &&
                  args.U64("wait-timeout-ms", 10000, &wait_timeout) &&
                  args.U64("ack-timeout-ms", 2000, &ack_timeout) &&
                  args.U64("linger-ms", 10000, &linger) && args.U64("gate-at", 0, &gate_at) &&
                  args.U64("ring-bytes", 0, &ring_bytes) && ProtoCap(args, &proto_cap);
  const std::string kind = args.Str("kind", "host");
  const std::string mode = args.Str("file-mode", "0600");
  if (!ok || (kind != "host" && kind != "cuda") || (mode != "0600" && mode != "0660") ||
      packet_bytes == 0 || packet_bytes > 0xffffffffull || slots > 0xffffffffull ||
      max_subs > 0xffffffffull || width > 0xffffffffull || height > 0xffffffffull ||
      ack_timeout > INT32_MAX || wait_timeout > INT32_MAX || codec > 0xffffffffull ||
      (args.Has("ring-bytes") && (ring_bytes < 4096 || (ring_bytes & (ring_bytes - 1)) != 0 ||
                                  ring_bytes < 2 * (packet_bytes + 32)))) {
    Usage();  // ADP-ARGS-01 / ADP-PUB-03: a value the option does not accept
    return kExitUsage;
  }
  if (kind == "cuda" && !CudaUsable()) {  // ADP-KIND-01
    EmitError(CUFRAMES_UNSUPPORTED, "--kind cuda: no CUDA kind in this build or no usable device");
    return kExitUnsupported;
  }
  InstallTermHandler();
  SetDiag(args.Has("diag"), args.Str("key", ""));
  if (bytes == 0) bytes = width != 0 && height != 0 ? width * height * 3 / 2 : 4096;
  const std::string key = args.Str("key", "");

  cuframes_pub_options o;
  cuframes_pub_options_init(&o);
  o.key = key.c_str();
  o.memory_kind = kind == "cuda" ? CUFRAMES_KIND_CUDA_IPC : CUFRAMES_KIND_HOST;
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
