// cuframes-sub: the reference subscriber adapter (the conformance harness's default implementation
// under test, and the interop tests' subscriber).
//
//   cuframes-sub --key K [--frames N] [--packets N] [--timeout-ms T] [--max-proto V]
//                [--kind host|cuda|cuda_vmm_fd|any] [--hold-ms T] [--verify-hold] [--seed S]
//                [--hold-max-us U] [--connect-timeout-ms T] [--no-release-after N]
//                [--reconnect N] [--reconnect-timeout-ms T] [--wait-params] [--gop G] [--diag]
//
// Reads N frames and/or N packets (interleaved, frames first) and verifies the deterministic
// content of adapter_common.h. Prints JSON lines on stdout:
//   {"event":"attached","key":K,"index":I,"proto":V,"kind":"host","start_seq":S,"packet_ring":b}
//   {"event":"frame","seq":n,"size":B,"checksum":"<fnv1a64>","valid":true}
//   {"event":"packet","seq":k,"size":s,"keyframe":b,"generation":G,"checksum":"...","valid":true}
//   {"event":"overrun"}                      packet ring lapped us (resumes at a keyframe)
//   {"event":"codec_params","codec":C,"generation":G,"valid":b}
//   {"event":"done","frames":n,"packets":p}
//   {"event":"error","code":C,"name":"PEER_CLOSED","where":"..."}
// --hold-ms T holds each frame T ms before releasing it (a slow consumer). --verify-hold holds
// each frame a pseudo-random 0..U us (--hold-max-us, default 2000) and re-verifies its content
// before releasing it: if the publisher reused the slot before our ACK, the check fails (exit 4).
// --no-release-after N stops releasing after N frames (to provoke eviction).
// --reconnect N: when a session ends with PEER_CLOSED or NOT_FOUND (the publisher died, closed or
// is not up yet), print {"event":"reconnecting","attempt":i}, close everything of that session and
// connect again, retrying NOT_FOUND/PEER_CLOSED for at most --reconnect-timeout-ms (default
// 10000); up to N times. --frames/--packets count per session; "done" ends the last session.
// --wait-params: poll get_codec_params (every millisecond, at most --timeout-ms) while it says
// NO_CODEC_PARAMS, as a decoder waiting for its SPS/PPS would. --diag: see adapter_common.h.
// --gop G: a packet is also valid only if its KEYFRAME flag matches (k - 1) mod G == 0
// (ADAPTER.md ADP-SUB-01). With --frames and --packets it alternates frame, packet (ADP-SUB-02).
// SIGTERM closes the session (DETACH OK) and exits 0 (ADP-SIG-01).
// $CUFRAMES_MAX_PROTO caps the protocol version when --max-proto is absent.
// Exit codes: 0 ok, 1 usage, 2 protocol/peer error, 3 timeout, 4 verification, 77 unsupported.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "adapter_cli.h"
#include "adapter_common.h"
#include "cuframes/cuframes.h"

#ifdef CUFRAMES_WITH_CUDA
#include <cuda_runtime.h>
#endif

using namespace cuframes::adapter;

namespace {

const char* KindName(uint32_t kind) {
  switch (kind) {
    case CUFRAMES_KIND_HOST:
      return "host";
    case CUFRAMES_KIND_CUDA_IPC:
      return "cuda";
    case CUFRAMES_KIND_CUDA_VMM_FD:
      return "cuda_vmm_fd";
    default:
      return "unknown";
  }
}

// Makes the frame's bytes readable on the host: the mapping itself (HOST) or a copy (CUDA).
bool FrameBytes(const cuframes_frame& f, std::vector<uint8_t>* copy, const uint8_t** out) {
  if (f.memory_kind == CUFRAMES_KIND_HOST) {
    *out = static_cast<const uint8_t*>(f.data);
    return true;
  }
#ifdef CUFRAMES_WITH_CUDA
  copy->resize(f.payload_bytes);
  auto stream = static_cast<cudaStream_t>(f.cuda_stream);
  if (cudaMemcpyAsync(copy->data(), f.data, f.payload_bytes, cudaMemcpyDeviceToHost, stream) !=
          cudaSuccess ||
      cudaStreamSynchronize(stream) != cudaSuccess) {
    return false;
  }
  *out = copy->data();
  return true;
#else
  (void)copy;
  return false;
#endif
}

// Connects, retrying while the publisher is not (yet) there: NOT_FOUND (no socket, or nobody
// listening on a dead publisher's stale one) and PEER_CLOSED (it went away mid-handshake).
// Returns the last status after `timeout_ms`.
int ConnectRetrying(const cuframes_sub_options& o, int64_t timeout_ms, cuframes_subscriber** out) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const int s = cuframes_sub_connect(&o, out);
    if ((s != CUFRAMES_NOT_FOUND && s != CUFRAMES_PEER_CLOSED) ||
        std::chrono::steady_clock::now() >= deadline) {
      return s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // connect retry pacing
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string key, kind = "any";
  uint64_t frames = 0, packets = 0, timeout_ms = 5000, hold_ms = 0, seed = 1;
  uint64_t connect_timeout = 2000, no_release_after = UINT64_MAX, hold_max_us = 2000;
  uint64_t reconnect = 0, reconnect_timeout = 10000, gop = 0, max_proto = 0;
  bool verify_hold = false, wait_params = false, diag = false;
  constexpr uint64_t kI32 = INT32_MAX;
  Cli cli("cuframes-sub",
          "The reference's subscriber adapter (spec/ADAPTER.md): reads frames and packets of\n"
          "--key in $CUFRAMES_SOCKET_DIR, verifies them and prints one JSON event per line.");
  cli.Text("--key", &key, {}, "the key (RES-NAME-01)", true);
  cli.Number("--frames", &frames, 0, UINT64_MAX, "frames to read and release, then close");
  cli.Number("--packets", &packets, 0, UINT64_MAX, "ask for packets; read until seq >= N");
  cli.Number("--timeout-ms", &timeout_ms, 0, kI32, "bound of each blocking call");
  cli.Number("--max-proto", &max_proto, 1, 0xffff,
             "highest proto_version offered (default $CUFRAMES_MAX_PROTO, else the highest)");
  cli.Text("--kind", &kind, {"host", "cuda", "cuda_vmm_fd", "any"},
           "kinds offered in kinds_mask (cuda: CUDA_IPC only; cuda_vmm_fd: CUDA_VMM_FD only)");
  cli.Number("--hold-ms", &hold_ms, 0, UINT64_MAX, "hold each frame T ms before releasing it");
  cli.Flag("--verify-hold", &verify_hold,
           "hold each frame 0..--hold-max-us us and verify it again before releasing");
  cli.Number("--hold-max-us", &hold_max_us, 0, UINT64_MAX, "longest --verify-hold hold");
  cli.Number("--seed", &seed, 0, UINT64_MAX, "seed of the --verify-hold holds");
  cli.Number("--connect-timeout-ms", &connect_timeout, 0, kI32,
             "retry connecting while the publisher is not there, at most T ms");
  cli.Number("--no-release-after", &no_release_after, 0, UINT64_MAX,
             "stop releasing after N frames (to provoke eviction)");
  cli.Number("--reconnect", &reconnect, 0, UINT64_MAX,
             "connect again up to N times after PEER_CLOSED or NOT_FOUND");
  cli.Number("--reconnect-timeout-ms", &reconnect_timeout, 0, kI32,
             "retry each reconnection at most T ms");
  cli.Number("--gop", &gop, 1, UINT64_MAX, "check each packet's KEYFRAME flag (ADP-SUB-01)");
  cli.Flag("--wait-params", &wait_params, "poll the codec parameters until they are set");
  cli.Flag("--diag", &diag, "add descriptor and mapping counts to every event");
  if (const int rc = cli.Parse(argc, argv); rc >= 0) return rc;
  uint32_t proto_cap = 0;
  if (!ProtoCap(cli.Given("--max-proto") ? &max_proto : nullptr, &proto_cap)) {
    std::fprintf(stderr, "cuframes-sub: $CUFRAMES_MAX_PROTO must be a number in [1, 65535]\n");
    return kExitUsage;  // ADP-ARGS-01
  }
  if (kind == "cuda" && !CudaUsable()) {  // ADP-KIND-01
    EmitError(CUFRAMES_UNSUPPORTED, "--kind cuda: no CUDA kind in this build or no usable device");
    return kExitUnsupported;
  }
  if (kind == "cuda_vmm_fd" && !CudaVmmUsable()) {  // ADP-KIND-01 for the optional kind
    EmitError(CUFRAMES_UNSUPPORTED,
              "--kind cuda_vmm_fd: no CUDA kind in this build, no usable device, or the device "
              "cannot import POSIX file descriptor allocations");
    return kExitUnsupported;
  }
  InstallTermHandler();
  SetDiag(diag, key);
  std::mt19937_64 rng(seed);

  cuframes_sub_options o;
  cuframes_sub_options_init(&o);
  o.key = key.c_str();
  o.max_proto_version = proto_cap;
  o.want_packets = packets > 0 ? 1 : 0;
  o.connect_timeout_ms = static_cast<uint32_t>(connect_timeout);
  const uint32_t host = CUFRAMES_KIND_BIT(CUFRAMES_KIND_HOST);
  // --kind any offers what this build and machine support (ADAPTER.md section 2).
  const uint32_t cuda = (kind == "cuda" || kind == "any") && CudaUsable()
                            ? CUFRAMES_KIND_BIT(CUFRAMES_KIND_CUDA_IPC)
                            : 0;
  const uint32_t vmm = (kind == "cuda_vmm_fd" || kind == "any") && CudaVmmUsable()
                           ? CUFRAMES_KIND_BIT(CUFRAMES_KIND_CUDA_VMM_FD)
                           : 0;
  o.kinds_mask = kind == "host"          ? host
                 : kind == "cuda"        ? cuda
                 : kind == "cuda_vmm_fd" ? vmm
                                         : host | cuda | vmm;
  const auto timeout = static_cast<int32_t>(timeout_ms);
  int exit_code = kExitOk;
  uint64_t got_frames = 0;
  uint64_t got_packets = 0;
  std::vector<uint8_t> copy;
  std::vector<uint8_t> packet(1 << 16);
  // One session per connection; --reconnect N allows N more after the publisher went away.
  for (uint64_t attempt = 0;; ++attempt) {
    exit_code = kExitOk;
    got_frames = 0;
    got_packets = 0;
    int last = CUFRAMES_OK;  // the status that ended this session
    cuframes_subscriber* sub = nullptr;
    int s = attempt == 0 ? cuframes_sub_connect(&o, &sub)
                         : ConnectRetrying(o, static_cast<int64_t>(reconnect_timeout), &sub);
    if (s != CUFRAMES_OK) {
      EmitError(last = s, "connect");
      exit_code = ExitCodeFor(s);
    } else {
      cuframes_sub_info info;
      cuframes_sub_get_info(sub, &info);
      EmitJson("\"event\":\"attached\",\"key\":" + Quote(key) +
               ",\"index\":" + std::to_string(info.subscriber_index) +
               ",\"proto\":" + std::to_string(info.proto_version) +
               ",\"kind\":" + Quote(KindName(info.memory_kind)) +
               ",\"start_seq\":" + std::to_string(info.start_seq) +
               ",\"packet_ring\":" + (info.packet_ring ? "true" : "false"));

      if (packets > 0) {
        uint32_t size = 0, codec = 0, generation = 0;
        std::vector<uint8_t> params(4096);
        s = cuframes_sub_get_codec_params(sub, params.data(), 4096, &size, &codec, &generation);
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (wait_params && s == CUFRAMES_NO_CODEC_PARAMS &&
               std::chrono::steady_clock::now() < until) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polling a decoder's wait
          s = cuframes_sub_get_codec_params(sub, params.data(), 4096, &size, &codec, &generation);
        }
        if (s == CUFRAMES_OK) {
          const std::string expect = CodecParamsBytes(codec);
          const bool valid =
              size == expect.size() && std::memcmp(params.data(), expect.data(), size) == 0;
          EmitJson("\"event\":\"codec_params\",\"codec\":" + std::to_string(codec) +
                   ",\"generation\":" + std::to_string(generation) +
                   ",\"valid\":" + (valid ? "true" : "false"));
          if (!valid) exit_code = kExitVerify;
        } else if (s != CUFRAMES_NO_CODEC_PARAMS) {
          EmitError(last = s, "get_codec_params");
          exit_code = ExitCodeFor(s);
        }
      }
      bool stopped = false;  // SIGTERM: close (DETACH OK) and exit 0 (ADP-SIG-01)
      // Each blocking call waits at most --timeout-ms (ADP-SUB-02), in slices so SIGTERM is seen.
      // A slice is 1000 ms: well above PEER_DEATH_DETECT_MS (250 ms), so whether the library
      // bounds its own futex waits (SHM-ORDER-04) shows at the wire instead of being hidden by the
      // adapter's retry; above SEQLOCK_SPIN_LIMIT_MS, so a record lock held odd is still reported
      // CORRUPT (the library's spin restarts with each call); never 0 ms, which would make the
      // last call non-blocking (AGAIN instead of TIMEOUT); and short next to the harness's 5 s
      // for a SIGTERM to end the subscriber.
      constexpr int64_t kSliceMs = 1000;
      auto sliced = [&](auto&& call) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout);
        int r;
        do {
          const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                                until - std::chrono::steady_clock::now())
                                .count();
          r = call(static_cast<int32_t>(std::clamp<int64_t>(left, 1, kSliceMs)));
        } while (r == CUFRAMES_TIMEOUT && !TermRequested() &&
                 std::chrono::steady_clock::now() < until);
        if (r == CUFRAMES_TIMEOUT && TermRequested()) stopped = true;
        return r;
      };
      while (exit_code == kExitOk && !stopped && (got_frames < frames || got_packets < packets)) {
        if (TermRequested()) {
          stopped = true;
          break;
        }
        if (got_frames < frames) {
          cuframes_frame f;
          s = sliced([&](int32_t t) { return cuframes_sub_next_frame(sub, t, &f); });
          if (stopped) break;
          if (s != CUFRAMES_OK) {
            EmitError(last = s, "next_frame");
            exit_code = ExitCodeFor(s);
            break;
          }
          const uint8_t* bytes = nullptr;
          if (!FrameBytes(f, &copy, &bytes)) {
            EmitError(CUFRAMES_CUDA, "copy frame");
            exit_code = kExitPeer;
            break;
          }
          bool valid = CheckFrame(bytes, f.payload_bytes, f.seq);
          const std::string sum = Hex64(Fnv1a64(bytes, f.payload_bytes));
          if (hold_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
          if (verify_hold) {
            std::this_thread::sleep_for(std::chrono::microseconds(rng() % (hold_max_us + 1)));
            if (!FrameBytes(f, &copy, &bytes)) {
              EmitError(CUFRAMES_CUDA, "copy frame");
              exit_code = kExitPeer;
              break;
            }
            valid = valid && CheckFrame(bytes, f.payload_bytes, f.seq);
          }
          EmitJson("\"event\":\"frame\",\"seq\":" + std::to_string(f.seq) +
                   ",\"size\":" + std::to_string(f.payload_bytes) + ",\"checksum\":\"" + sum +
                   "\",\"valid\":" + (valid ? "true" : "false"));
          ++got_frames;
          if (!valid) {
            exit_code = kExitVerify;
            break;
          }
          if (got_frames <= no_release_after) {
            s = cuframes_sub_release(sub, &f);
            if (s != CUFRAMES_OK) {
              EmitError(last = s, "release");
              exit_code = ExitCodeFor(s);
              break;
            }
          }
        }
        if (got_packets < packets) {
          cuframes_packet p;
          s = sliced([&](int32_t t) {
            return cuframes_sub_next_packet(sub, t, packet.data(),
                                            static_cast<uint32_t>(packet.size()), &p);
          });
          if (stopped) break;
          if (s == CUFRAMES_INVALID_ARGUMENT && p.size > packet.size()) {
            packet.resize(p.size);
            continue;
          }
          if (s == CUFRAMES_PACKET_OVERRUN) {
            EmitJson("\"event\":\"overrun\"");
            continue;
          }
          if (s != CUFRAMES_OK) {
            EmitError(last = s, "next_packet");
            exit_code = ExitCodeFor(s);
            break;
          }
          const bool key_flag = (p.flags & CUFRAMES_PACKET_KEYFRAME) != 0;
          const bool valid = CheckPacket(packet.data(), p.size, p.seq) &&
                             (gop == 0 || key_flag == PacketIsKey(p.seq, gop));
          EmitJson("\"event\":\"packet\",\"seq\":" + std::to_string(p.seq) +
                   ",\"size\":" + std::to_string(p.size) +
                   ",\"keyframe\":" + ((p.flags & CUFRAMES_PACKET_KEYFRAME) ? "true" : "false") +
                   ",\"generation\":" + std::to_string(p.params_generation) + ",\"checksum\":\"" +
                   Hex64(Fnv1a64(packet.data(), p.size)) +
                   "\",\"valid\":" + (valid ? "true" : "false"));
          ++got_packets;
          if (!valid) exit_code = kExitVerify;
          // A late joiner may start past packet 1: count up to the publisher's last packet.
          if (p.seq >= packets) got_packets = packets;
        }
      }
      if (exit_code == kExitOk && !stopped) {
        EmitJson("\"event\":\"done\",\"frames\":" + std::to_string(got_frames) +
                 ",\"packets\":" + std::to_string(got_packets));
      }
      cuframes_sub_close(sub);
    }
    // The publisher went away (PEER_CLOSED) or is not there (NOT_FOUND): wait for the next one.
    if (attempt >= reconnect || (last != CUFRAMES_PEER_CLOSED && last != CUFRAMES_NOT_FOUND)) {
      break;
    }
    EmitJson("\"event\":\"reconnecting\",\"attempt\":" + std::to_string(attempt + 1));
  }
  return exit_code;
}
