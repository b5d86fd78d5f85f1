// record.cc: `cuframes-video record --key K OUT [options]`.
//
// Subscribes to the packet ring of K and writes an Annex B elementary stream (OUT, e.g.
// out.h264 / out.hevc; `ffplay out.h264` plays it). Before the first packet of each parameter
// generation it writes the codec parameters (PROTOCOL.md 10.5, already Annex B), then the
// packets as they arrive. An Annex B stream needs no muxing, carries a mid-stream parameter
// change (resolution switch) as it is, and is byte for byte what the ring carried.
//
// New parameters are written before the keyframe whose params_generation differs from the one
// held. When the ring's parameters have already moved on to a later generation (the ring holds
// one), a keyframe that carries its own complete parameter sets in band is written as it is;
// otherwise the recorder waits for a keyframe of a generation it can read (as PKT-READ-08 does
// after a join) and reports "params_lost". On PACKET_OVERRUN (lapped) it logs
// the loss; the library resumes at the latest keyframe (PKT-READ-05), and that keyframe starts
// a new segment of the recording.
//
// Options:
//   --packets N              stop after writing N packets (default: until the publisher closes)
//   --until-eos              record until the publisher closes the ring (the default)
//   --timeout-ms T           fail with TIMEOUT when no packet arrives for T ms (default 10000)
//   --connect-timeout-ms T   the whole handshake (default 2000)
//   --start-gate             once attached, print "gate" and wait for a line on stdin before
//                            the first read (a reader that attached, then fell behind)
//   --pause-after N          after writing packet N, print "paused" and wait for a line on
//                            stdin (tests make a slow reader this way, without sleeps)
//   --progress               one "packet" event per written packet
// Events (JSON lines on stdout): ready, params, packet, overrun, params_lost, segment, paused,
// error, done. Exit codes: cli.h.
#include "record.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "annexb.h"
#include "cli.h"
#include "cuframes/cuframes.h"

namespace cuframes::video {

namespace {

constexpr int32_t kSliceMs = 250;  // each wait is short, so a stop request is seen

// A contiguous run of written packets (from a keyframe to the packet before a loss).
struct Segment {
  bool open = false;
  uint64_t first_seq = 0, last_seq = 0, packets = 0;
  int64_t first_pts = 0, last_pts = 0;
};

std::string Pts(int64_t pts) {
  return pts == INT64_MIN ? "null" : std::to_string(pts);
}

}  // namespace

void AddRecordOptions(adapter::Cli& cmd, RecordOptions* o) {
  cmd.Text("--key", &o->key, {}, "the key of the publisher", true);
  cmd.Positional("out", &o->out_path, "the Annex B stream to write (OUT.h264 or OUT.hevc)");
  cmd.Number("--packets", &o->packets, 1, UINT64_MAX, "stop after writing N packets");
  cmd.Flag("--until-eos", &o->until_eos,
           "record until the publisher closes the ring (the default)");
  cmd.Excludes("--packets", "--until-eos");
  cmd.Number("--timeout-ms", &o->timeout_ms, 1, INT32_MAX,
             "fail with TIMEOUT when no packet arrives for T ms");
  cmd.Number("--connect-timeout-ms", &o->connect_timeout_ms, 1, INT32_MAX, "the whole handshake");
  cmd.Flag("--start-gate", &o->start_gate,
           "once attached, print \"gate\" and wait for a line on stdin before the first read");
  cmd.Number("--pause-after", &o->pause_after, 1, UINT64_MAX,
             "after writing packet N, print \"paused\" and wait for a line on stdin");
  cmd.Flag("--progress", &o->progress, "one \"packet\" event per written packet");
}

int RecordMain(const RecordOptions& opt) {
  const uint64_t limit = opt.packets, timeout_ms = opt.timeout_ms,
                 connect_ms = opt.connect_timeout_ms, pause_after = opt.pause_after;
  const std::string& key = opt.key;
  const std::string& out_path = opt.out_path;
  const bool progress = opt.progress;
  InstallStopHandler();

  cuframes_sub_options o;
  cuframes_sub_options_init(&o);
  o.key = key.c_str();
  o.kinds_mask = CUFRAMES_KIND_BIT(CUFRAMES_KIND_HOST);
  o.want_packets = 1;
  o.connect_timeout_ms = static_cast<uint32_t>(connect_ms);
  cuframes_subscriber* sub = nullptr;
  int s = cuframes_sub_connect(&o, &sub);
  if (s != CUFRAMES_OK) {
    EmitError(s, "connect");
    return ExitCodeFor(s);
  }
  cuframes_sub_info info;
  cuframes_sub_get_info(sub, &info);
  if (info.packet_ring == 0) {
    EmitError(CUFRAMES_NO_PACKET_RING, "connect");
    cuframes_sub_close(sub);
    return kExitPeer;
  }
  std::FILE* out = std::fopen(out_path.c_str(), "wb");
  if (out == nullptr) {
    EmitError(CUFRAMES_SYSTEM, "open " + out_path, "\"detail\":" + Quote(std::strerror(errno)));
    cuframes_sub_close(sub);
    return kExitUsage;
  }
  EmitJson("\"event\":\"ready\",\"key\":" + Quote(key) + ",\"pid\":" + std::to_string(getpid()) +
           ",\"proto\":" + std::to_string(info.proto_version));

  if (opt.start_gate) {
    EmitJson("\"event\":\"gate\"");
    WaitStdinLine();
  }
  int exit_code = kExitOk;
  std::vector<uint8_t> buf(1u << 20);
  std::vector<uint8_t> params(4096);
  uint32_t held_gen = 0;  // generation of the parameters last written to the file
  bool need_key = true;   // no packet goes out before a keyframe of held_gen
  uint64_t written = 0, overruns = 0, lost_params = 0, segments = 0;
  std::string generations;  // the generations written, in order (JSON list body)
  Segment seg;
  auto close_segment = [&] {
    if (!seg.open) return;
    ++segments;
    EmitJson("\"event\":\"segment\",\"first_seq\":" + std::to_string(seg.first_seq) +
             ",\"first_pts\":" + Pts(seg.first_pts) +
             ",\"last_seq\":" + std::to_string(seg.last_seq) +
             ",\"last_pts\":" + Pts(seg.last_pts) + ",\"packets\":" + std::to_string(seg.packets));
    seg = {};
  };
  auto write = [&](const void* data, size_t size) {
    if (size > 0 && std::fwrite(data, 1, size, out) != size) {
      EmitError(CUFRAMES_SYSTEM, "write " + out_path, "\"detail\":" + Quote(std::strerror(errno)));
      exit_code = kExitPeer;
      return false;
    }
    return true;
  };

  auto idle_since = std::chrono::steady_clock::now();
  while (exit_code == kExitOk && !StopRequested() && (limit == 0 || written < limit)) {
    // PKT-RING-04: every subscriber counts for frame ACKs; frames are not recorded, just released.
    cuframes_frame frame;
    while (cuframes_sub_next_frame(sub, 0, &frame) == CUFRAMES_OK)
      cuframes_sub_release(sub, &frame);

    cuframes_packet p;
    s = cuframes_sub_next_packet(sub, kSliceMs, buf.data(), static_cast<uint32_t>(buf.size()), &p);
    if (s == CUFRAMES_INVALID_ARGUMENT && p.size > buf.size()) {
      buf.resize(p.size);  // the packet is kept for the next call
      continue;
    }
    if (s == CUFRAMES_TIMEOUT || s == CUFRAMES_AGAIN) {
      const auto idle = std::chrono::steady_clock::now() - idle_since;
      if (idle >= std::chrono::milliseconds(timeout_ms)) {
        EmitError(CUFRAMES_TIMEOUT, "next_packet", "\"waited_ms\":" + std::to_string(timeout_ms));
        exit_code = kExitTimeout;
      }
      continue;
    }
    idle_since = std::chrono::steady_clock::now();
    if (s == CUFRAMES_PACKET_OVERRUN) {
      // Lapped: packets were lost; the next one delivered is a keyframe (PKT-READ-05/06).
      ++overruns;
      EmitJson("\"event\":\"overrun\",\"after_seq\":" + std::to_string(seg.last_seq) +
               ",\"written\":" + std::to_string(written));
      std::fprintf(stderr,
                   "cuframes-video record: lapped after packet %llu; resyncing at the "
                   "next keyframe\n",
                   static_cast<unsigned long long>(seg.last_seq));
      close_segment();
      need_key = true;
      continue;
    }
    if (s == CUFRAMES_PEER_CLOSED) {
      if (limit != 0) EmitError(s, "next_packet", "\"written\":" + std::to_string(written));
      if (limit != 0) exit_code = kExitPeer;
      break;
    }
    if (s != CUFRAMES_OK) {
      EmitError(s, "next_packet");
      exit_code = ExitCodeFor(s);
      break;
    }
    const bool is_key = (p.flags & CUFRAMES_PACKET_KEYFRAME) != 0;
    if (is_key && p.params_generation != held_gen) {
      // PKT-READ-09: the caller reads the new parameters before decoding this packet. They
      // matter at a keyframe only: a non-key packet decodes with the parameters in force.
      uint32_t size = 0, codec = 0, gen = 0;
      s = cuframes_sub_get_codec_params(sub, params.data(), static_cast<uint32_t>(params.size()),
                                        &size, &codec, &gen);
      if (s != CUFRAMES_OK) {
        EmitError(s, "get_codec_params");
        exit_code = ExitCodeFor(s);
        break;
      }
      bool in_band = false;
      if (gen != p.params_generation &&
          (codec == CUFRAMES_CODEC_H264 || codec == CUFRAMES_CODEC_HEVC)) {
        // The ring holds one generation and it has moved on since this keyframe was written. A
        // keyframe that carries its own complete parameter sets (Annex B, in band) still
        // starts cleanly; they are already in the packet.
        ParameterSets({buf.data(), p.size},
                      codec == CUFRAMES_CODEC_H264 ? Codec::kH264 : Codec::kHevc, &in_band);
      }
      if (gen != p.params_generation && !in_band) {
        // This packet's parameters are gone: wait for a keyframe of a generation we can read.
        ++lost_params;
        EmitJson("\"event\":\"params_lost\",\"seq\":" + std::to_string(p.seq) +
                 ",\"packet_generation\":" + std::to_string(p.params_generation) +
                 ",\"ring_generation\":" + std::to_string(gen));
        close_segment();
        need_key = true;
        continue;
      }
      if (!in_band && !write(params.data(), size)) break;
      held_gen = p.params_generation;
      generations += (generations.empty() ? "" : ",") + std::to_string(held_gen);
      EmitJson("\"event\":\"params\",\"generation\":" + std::to_string(held_gen) + ",\"size\":" +
               std::to_string(in_band ? 0 : size) + ",\"seq\":" + std::to_string(p.seq) +
               ",\"source\":" + (in_band ? "\"in-band\"" : "\"ring\""));
    }
    if (need_key && !is_key) continue;  // the library already skips to a keyframe; belt and braces
    need_key = false;
    if (seg.open && p.seq != seg.last_seq + 1) {
      // Packets vanished without an overrun report: the publisher's seqs are contiguous.
      EmitJson("\"event\":\"gap\",\"after_seq\":" + std::to_string(seg.last_seq) +
               ",\"seq\":" + std::to_string(p.seq));
      close_segment();
    }
    if (!write(buf.data(), p.size)) break;
    ++written;
    if (!seg.open) {
      seg.open = true;
      seg.first_seq = p.seq;
      seg.first_pts = p.pts;
    }
    seg.last_seq = p.seq;
    seg.last_pts = p.pts;
    ++seg.packets;
    if (progress) {
      EmitJson("\"event\":\"packet\",\"seq\":" + std::to_string(p.seq) + ",\"pts\":" + Pts(p.pts) +
               ",\"size\":" + std::to_string(p.size) +
               ",\"keyframe\":" + (is_key ? "true" : "false") +
               ",\"generation\":" + std::to_string(p.params_generation));
    }
    if (pause_after != 0 && written == pause_after) {
      std::fflush(out);
      EmitJson("\"event\":\"paused\",\"seq\":" + std::to_string(p.seq));
      WaitStdinLine();
    }
  }
  close_segment();
  if (std::fclose(out) != 0 && exit_code == kExitOk) {
    EmitError(CUFRAMES_SYSTEM, "close " + out_path, "\"detail\":" + Quote(std::strerror(errno)));
    exit_code = kExitPeer;
  }
  EmitJson(
      "\"event\":\"done\",\"packets\":" + std::to_string(written) +
      ",\"overruns\":" + std::to_string(overruns) + ",\"segments\":" + std::to_string(segments) +
      ",\"params_lost\":" + std::to_string(lost_params) + ",\"generations\":[" + generations + "]");
  cuframes_sub_close(sub);
  return exit_code;
}

}  // namespace cuframes::video
