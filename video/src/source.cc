// source.cc: libavformat demuxing plus the *_mp4toannexb bitstream filters (see source.h).
#include "source.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavcodec/bsf.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
}

namespace cuframes::video {

namespace {

std::string AvError(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

int64_t To90k(int64_t ts, AVRational tb) {
  if (ts == AV_NOPTS_VALUE) return kNoPts;
  return av_rescale_q(ts, tb, AVRational{1, static_cast<int>(kPtsHz)});
}

}  // namespace

struct Source::Impl {
  AVFormatContext* fmt = nullptr;
  AVBSFContext* bsf = nullptr;
  AVPacket* pkt = nullptr;
  int stream = -1;
  AVRational tb{1, 1};
  Codec codec = Codec::kH264;
  int width = 0;
  int height = 0;
  std::vector<uint8_t> params;
  bool eof_sent = false;

  ~Impl() {
    av_packet_free(&pkt);
    av_bsf_free(&bsf);
    avformat_close_input(&fmt);
  }
};

Source::Source() : impl_(std::make_unique<Impl>()) {}
Source::~Source() = default;

std::string Source::Open(const std::string& path, bool* unsupported) {
  Impl& d = *impl_;
  *unsupported = false;
  int err = avformat_open_input(&d.fmt, path.c_str(), nullptr, nullptr);
  if (err < 0) return "cannot open " + path + ": " + AvError(err);
  err = avformat_find_stream_info(d.fmt, nullptr);
  if (err < 0) return "cannot read stream information of " + path + ": " + AvError(err);
  d.stream = av_find_best_stream(d.fmt, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (d.stream < 0) return path + " has no video stream";
  const AVStream* st = d.fmt->streams[d.stream];
  const AVCodecParameters* par = st->codecpar;
  const char* filter = nullptr;
  if (par->codec_id == AV_CODEC_ID_H264) {
    d.codec = Codec::kH264;
    filter = "h264_mp4toannexb";
  } else if (par->codec_id == AV_CODEC_ID_HEVC) {
    d.codec = Codec::kHevc;
    filter = "hevc_mp4toannexb";
  } else {
    *unsupported = true;
    return std::string("the video stream of ") + path + " is " + avcodec_get_name(par->codec_id) +
           "; cuframes-video publishes H.264 and HEVC only";
  }
  d.tb = st->time_base;
  d.width = par->width;
  d.height = par->height;
  const AVBitStreamFilter* f = av_bsf_get_by_name(filter);
  if (f == nullptr) return std::string("this FFmpeg has no ") + filter + " bitstream filter";
  if ((err = av_bsf_alloc(f, &d.bsf)) < 0) return "av_bsf_alloc: " + AvError(err);
  if ((err = avcodec_parameters_copy(d.bsf->par_in, par)) < 0) {
    return "avcodec_parameters_copy: " + AvError(err);
  }
  d.bsf->time_base_in = st->time_base;
  if ((err = av_bsf_init(d.bsf)) < 0) return std::string(filter) + ": " + AvError(err);
  const AVCodecParameters* out = d.bsf->par_out;
  if (out->extradata != nullptr && out->extradata_size > 0) {
    d.params =
        ParameterSets({out->extradata, static_cast<size_t>(out->extradata_size)}, d.codec, nullptr);
  }
  d.pkt = av_packet_alloc();
  if (d.pkt == nullptr) return "out of memory";
  return {};
}

Codec Source::codec() const {
  return impl_->codec;
}
int Source::width() const {
  return impl_->width;
}
int Source::height() const {
  return impl_->height;
}
const std::vector<uint8_t>& Source::initial_params() const {
  return impl_->params;
}

int Source::Next(AccessUnit* out, std::string* error) {
  Impl& d = *impl_;
  for (;;) {
    int err = av_bsf_receive_packet(d.bsf, d.pkt);
    if (err == 0) {
      out->data.assign(d.pkt->data, d.pkt->data + d.pkt->size);
      out->pts = To90k(d.pkt->pts, d.tb);
      out->dts = To90k(d.pkt->dts, d.tb);
      out->keyframe = (d.pkt->flags & AV_PKT_FLAG_KEY) != 0;
      av_packet_unref(d.pkt);
      return 1;
    }
    if (err == AVERROR_EOF) return 0;
    if (err != AVERROR(EAGAIN)) {
      *error = "bitstream filter: " + AvError(err);
      return -1;
    }
    if (d.eof_sent) return 0;
    // The filter wants input: the next packet of our stream, or the end (a null packet).
    for (;;) {
      err = av_read_frame(d.fmt, d.pkt);
      if (err < 0) break;
      if (d.pkt->stream_index == d.stream) break;
      av_packet_unref(d.pkt);
    }
    if (err == AVERROR_EOF) {
      d.eof_sent = true;
      err = av_bsf_send_packet(d.bsf, nullptr);
    } else if (err < 0) {
      *error = "read: " + AvError(err);
      return -1;
    } else {
      err = av_bsf_send_packet(d.bsf, d.pkt);  // takes the packet's reference
    }
    if (err < 0) {
      av_packet_unref(d.pkt);
      *error = "bitstream filter: " + AvError(err);
      return -1;
    }
  }
}

}  // namespace cuframes::video
