// publish.cc: `cuframes-video publish --key K FILE [options]`.
//
// Demuxes FILE (mp4, mkv, ts, or an H.264/HEVC Annex B elementary stream), converts each access
// unit to Annex B (source.h) and publishes it with its pts (90 kHz) and keyframe flag. The codec
// parameters are the stream's parameter sets in the form annexb.h describes; they are published
// before the first packet, and again, as a new generation, before a keyframe whose in-band
// parameter sets differ from the current ones (a resolution switch in a concatenated stream),
// as PKT-WRITE-05 asks.
//
// Options:
//   --ring-bytes R         packet ring capacity, a power of two >= 4096 (default 8 MiB)
//   --max-packet-bytes B   largest access unit (default 1 MiB; B + 32 <= R / 2). A larger one
//                          is refused with OVERSIZED, reported, and publishing goes on.
//   --realtime [--speed F] pace packets by their timestamps (F times real time, default 1)
//   --wait-subscribers N   before the first packet, wait until N subscribers are ACTIVE
//   --wait-timeout-ms T    ... at most T ms (default 10000)
//   --gate-at I[,I...]     before access unit I (1-based), print "gate" and wait for a line on
//                          stdin (tests hold the publisher at known points this way)
//   --hold                 after the last packet, print "eos" and wait for a line or EOF on
//                          stdin before closing
//   --linger-ms T          after the last packet, wait while subscribers are ACTIVE, at most T
//   --max-subscribers M    (default 8)
//   --progress             one "packet" event per published access unit
// Events (JSON lines on stdout): ready, subscriber, detached, evicted, params, packet, gate,
// error (OVERSIZED among them), eos. SIGTERM/SIGINT stop cleanly. Exit codes: cli.h.
#include "publish.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "annexb.h"
#include "cli.h"
#include "cuframes/cuframes.h"
#include "source.h"

namespace cuframes::video {

namespace {

using Clock = std::chrono::steady_clock;

void OnEvent(void*, const cuframes_pub_event* e) {
  const std::string idx = std::to_string(e->subscriber_index);
  if (e->kind == CUFRAMES_PUB_EVENT_ATTACHED) {
    EmitJson("\"event\":\"subscriber\",\"index\":" + idx + ",\"pid\":" + std::to_string(e->pid));
  } else {
    const char* kind = e->kind == CUFRAMES_PUB_EVENT_EVICTED ? "evicted" : "detached";
    EmitJson(std::string("\"event\":\"") + kind + "\",\"index\":" + idx +
             ",\"reason\":" + Quote(cuframes_status_name(static_cast<int>(e->reason))));
  }
}

const char* CodecName(Codec c) {
  return c == Codec::kH264 ? "h264" : "hevc";
}

std::string Pts(int64_t pts) {
  return pts == kNoPts ? "null" : std::to_string(pts);
}

// Paces access units by their decode timestamps (or pts when the container has no dts): unit
// with timestamp t goes out at origin + (t - t0) / speed. Sleeping here is pacing, not
// synchronisation; it wakes every 100 ms to see a stop request.
class Pacer {
 public:
  explicit Pacer(double speed) : speed_(speed) {}
  void Rebase() { have_origin_ = false; }
  void Wait(int64_t ts) {
    if (ts == kNoPts) return;
    if (!have_origin_) {
      origin_ = Clock::now();
      t0_ = ts;
      have_origin_ = true;
      return;
    }
    if (ts <= t0_) return;
    const double seconds = static_cast<double>(ts - t0_) / static_cast<double>(kPtsHz) / speed_;
    const auto due = origin_ + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(seconds));
    while (!StopRequested()) {
      const auto now = Clock::now();
      if (now >= due) return;
      std::this_thread::sleep_for(
          std::min<Clock::duration>(due - now, std::chrono::milliseconds(100)));
    }
  }

 private:
  double speed_;
  bool have_origin_ = false;
  Clock::time_point origin_;
  int64_t t0_ = 0;
};

// Parses "I[,I...]" (each >= 1) into *out; an empty string is no gate. Returns false when
// malformed.
bool ParseGates(const std::string& text, std::set<uint64_t>* out) {
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty() || item.size() > 18 ||
        item.find_first_not_of("0123456789") != std::string::npos) {
      return false;
    }
    const uint64_t v = std::stoull(item);
    if (v == 0) return false;
    out->insert(v);
  }
  return true;
}

}  // namespace

void AddPublishOptions(adapter::Cli& cmd, PublishOptions* o) {
  cmd.Text("--key", &o->key, {}, "the key the packet ring is published under", true);
  cmd.Positional("file", &o->path, "mp4, mkv, ts, or an H.264/HEVC Annex B elementary stream");
  cmd.Number("--ring-bytes", &o->ring_bytes, 4096, uint64_t{1} << 40,
             "packet ring capacity, a power of two");
  cmd.Number("--max-packet-bytes", &o->max_packet_bytes, 1, 0xffffffffu,
             "largest access unit; B + 32 <= ring bytes / 2");
  cmd.Flag("--realtime", &o->realtime, "pace packets by their timestamps");
  cmd.Positive("--speed", &o->speed, "with --realtime: F times real time");
  cmd.Number("--wait-subscribers", &o->wait_subscribers, 0, 64,
             "before the first packet, wait until N subscribers are ACTIVE");
  cmd.Number("--wait-timeout-ms", &o->wait_timeout_ms, 0, INT32_MAX, "... at most T ms");
  cmd.Text("--gate-at", &o->gate_at, {},
           "I[,I...]: before access unit I (1-based), print \"gate\" and wait for a line on stdin");
  cmd.Flag("--hold", &o->hold,
           "after the last packet, print \"eos\" and wait for a line or EOF on stdin");
  cmd.Number("--linger-ms", &o->linger_ms, 0, INT32_MAX,
             "after the last packet, wait while subscribers are ACTIVE, at most T ms");
  cmd.Number("--max-subscribers", &o->max_subscribers, 1, 64, "max_subscribers of the ring");
  cmd.Flag("--progress", &o->progress, "one \"packet\" event per published access unit");
}

int PublishMain(const adapter::Cli& cmd, const PublishOptions& opt) {
  if ((opt.ring_bytes & (opt.ring_bytes - 1)) != 0 ||
      opt.max_packet_bytes + 32 > opt.ring_bytes / 2) {
    return cmd.Fail(
        "--ring-bytes must be a power of two >= 4096 and --max-packet-bytes + 32 <= "
        "ring bytes / 2");
  }
  std::set<uint64_t> gates;
  if (!ParseGates(opt.gate_at, &gates)) {
    return cmd.Fail("--gate-at takes access unit numbers >= 1, separated by commas");
  }
  const std::string& key = opt.key;
  const std::string& path = opt.path;
  const bool progress = opt.progress;
  const uint64_t ring_bytes = opt.ring_bytes, max_packet = opt.max_packet_bytes,
                 wait_subs = opt.wait_subscribers, wait_timeout = opt.wait_timeout_ms,
                 linger = opt.linger_ms, max_subs = opt.max_subscribers;
  const double speed = opt.speed;

  Source source;
  bool unsupported = false;
  if (const std::string err = source.Open(path, &unsupported); !err.empty()) {
    EmitError(unsupported ? CUFRAMES_UNSUPPORTED : CUFRAMES_INVALID_ARGUMENT, "open",
              "\"detail\":" + Quote(err));
    std::fprintf(stderr, "cuframes-video publish: %s\n", err.c_str());
    return unsupported ? kExitUnsupported : kExitUsage;
  }
  const Codec codec = source.codec();
  const uint32_t wire_codec = codec == Codec::kH264 ? CUFRAMES_CODEC_H264 : CUFRAMES_CODEC_HEVC;

  InstallStopHandler();
  cuframes_pub_options o;
  cuframes_pub_options_init(&o);
  o.key = key.c_str();
  o.memory_kind = CUFRAMES_KIND_HOST;
  // The frame ring is unused (packets only) but must exist: the smallest one the library takes.
  o.width = static_cast<uint32_t>(std::max(source.width(), 0));
  o.height = static_cast<uint32_t>(std::max(source.height(), 0));
  o.pixel_format = CUFRAMES_PIXEL_OPAQUE;
  o.slot_bytes = 4096;
  o.slot_count = 2;
  o.max_subscribers = static_cast<uint32_t>(max_subs);
  o.packet_capacity = ring_bytes;
  o.max_packet_bytes = static_cast<uint32_t>(max_packet);
  o.codec = wire_codec;
  o.on_event = OnEvent;
  cuframes_publisher* pub = nullptr;
  int s = cuframes_pub_create(&o, &pub);
  if (s != CUFRAMES_OK) {
    EmitError(s, "create");
    return ExitCodeFor(s);
  }
  EmitJson("\"event\":\"ready\",\"key\":" + Quote(key) + ",\"pid\":" + std::to_string(getpid()) +
           ",\"codec\":" + Quote(CodecName(codec)) + ",\"width\":" +
           std::to_string(source.width()) + ",\"height\":" + std::to_string(source.height()) +
           ",\"ring_bytes\":" + std::to_string(ring_bytes) +
           ",\"max_packet_bytes\":" + std::to_string(max_packet));

  int exit_code = kExitOk;
  auto fail = [&](int status, const std::string& where, const std::string& extra = "") {
    EmitError(status, where, extra);
    exit_code = ExitCodeFor(status);
  };

  if (wait_subs > 0) {
    const auto until = Clock::now() + std::chrono::milliseconds(wait_timeout);
    for (;;) {
      s = cuframes_pub_wait_subscribers(pub, static_cast<uint32_t>(wait_subs), 100);
      if (s != CUFRAMES_TIMEOUT || StopRequested() || Clock::now() >= until) break;
    }
    if (s != CUFRAMES_OK && !StopRequested()) fail(s, "wait-subscribers");
  }

  // The generation the ring holds: the library numbers publications 1, 2, ... on a fresh ring
  // (PKT-PARAMS-01) and this process is its only writer, so counting here matches it.
  uint32_t generation = 0;
  std::vector<uint8_t> current;
  auto set_params = [&](const std::vector<uint8_t>& ps, uint64_t au) {
    const int r =
        cuframes_pub_set_codec_params(pub, wire_codec, ps.data(), static_cast<uint32_t>(ps.size()));
    if (r != CUFRAMES_OK) {
      fail(r, "set_codec_params", "\"size\":" + std::to_string(ps.size()));
      return false;
    }
    current = ps;
    ++generation;
    EmitJson("\"event\":\"params\",\"generation\":" + std::to_string(generation) +
             ",\"size\":" + std::to_string(ps.size()) + ",\"before_au\":" + std::to_string(au));
    return true;
  };
  if (exit_code == kExitOk && !source.initial_params().empty()) {
    set_params(source.initial_params(), 1);
  }

  Pacer pacer(speed);
  AccessUnit au;
  uint64_t index = 0, published = 0, oversized = 0;
  std::string error;
  while (exit_code == kExitOk && !StopRequested()) {
    const int r = source.Next(&au, &error);
    if (r < 0) {
      fail(CUFRAMES_INVALID_ARGUMENT, "read", "\"detail\":" + Quote(error));
      break;
    }
    if (r == 0) break;
    ++index;
    if (gates.count(index) != 0) {
      EmitJson("\"event\":\"gate\",\"au\":" + std::to_string(index) +
               ",\"published\":" + std::to_string(published));
      WaitStdinLine();
      pacer.Rebase();
    }
    if (opt.realtime) pacer.Wait(au.dts != kNoPts ? au.dts : au.pts);
    if (au.keyframe) {
      // PKT-WRITE-05: parameters a keyframe needs are published before it.
      bool complete = false;
      std::vector<uint8_t> ps = ParameterSets(au.data, codec, &complete);
      if (complete && ps != current && !set_params(ps, index)) break;
      if (current.empty()) {
        std::fprintf(stderr,
                     "cuframes-video publish: keyframe %llu comes before any parameter sets\n",
                     static_cast<unsigned long long>(index));
      }
    }
    s = cuframes_pub_publish_packet(pub, au.data.data(), static_cast<uint32_t>(au.data.size()),
                                    au.pts, au.keyframe ? CUFRAMES_PACKET_KEYFRAME : 0u);
    const std::string what = "\"au\":" + std::to_string(index) + ",\"pts\":" + Pts(au.pts) +
                             ",\"size\":" + std::to_string(au.data.size()) +
                             ",\"keyframe\":" + (au.keyframe ? "true" : "false");
    if (s == CUFRAMES_OVERSIZED) {
      // PKT-WRITE-01: refused, nothing written; the stream goes on without this access unit.
      ++oversized;
      EmitError(s, "publish_packet", what + ",\"max_packet_bytes\":" + std::to_string(max_packet));
      continue;
    }
    if (s != CUFRAMES_OK) {
      fail(s, "publish_packet", what);
      break;
    }
    ++published;
    if (progress) {
      EmitJson("\"event\":\"packet\",\"seq\":" + std::to_string(published) + "," + what +
               ",\"generation\":" + std::to_string(generation));
    }
  }
  if (exit_code == kExitOk) {
    EmitJson("\"event\":\"eos\",\"access_units\":" + std::to_string(index) + ",\"packets\":" +
             std::to_string(published) + ",\"oversized\":" + std::to_string(oversized) +
             ",\"generations\":" + std::to_string(generation) +
             ",\"stopped\":" + (StopRequested() ? "true" : "false"));
    if (opt.hold && !StopRequested()) WaitStdinLine();
    const auto until = Clock::now() + std::chrono::milliseconds(linger);
    while (linger > 0 && !StopRequested() && cuframes_pub_subscriber_count(pub) > 0 &&
           Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  cuframes_pub_destroy(pub);
  return exit_code;
}

}  // namespace cuframes::video
