// spec_header_test: the generated cuframes_spec_generated.h compiles cleanly and carries the
// facts the original design fixed. A failure here means the twin (spec/cuframes.json) changed a
// layout the wire depends on: that is a proto_version bump, not a test to edit.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "cuframes_spec_generated.h"

namespace spec = cuframes::spec;

// Compile-time: the sizes of the original design and a few offsets peers already rely on.
static_assert(spec::FrameMeta::size == 64);
static_assert(spec::SlotDescriptor::size == 192);
static_assert(spec::SubscriberSlot::size == 128);
static_assert(spec::SegmentHeader::size == 256);
static_assert(spec::SEGMENT_HEADER_SIZE == spec::SegmentHeader::size);
static_assert(spec::FRAME_META_SIZE == spec::FrameMeta::size);
static_assert(spec::SegmentHeader::layout_version::offset == 0,
              "a version field comes first in every shared header");
static_assert(spec::SegmentHeader::write_seq::offset == 128);
static_assert(spec::SegmentHeader::write_seq::size == 8);
static_assert(spec::SegmentHeader::write_seq::atomic);
static_assert(std::is_same_v<spec::SegmentHeader::write_seq::type, std::uint64_t>);
static_assert(spec::SlotDescriptor::mem_handle::offset == 64 &&
                  spec::SlotDescriptor::mem_handle::size == 64,
              "the 64-byte cudaIpcMemHandle_t follows the 64-byte frame meta");
static_assert(spec::SlotDescriptor::ready_event::offset == 128 &&
                  spec::SlotDescriptor::ready_event::size == 64,
              "the 64-byte cudaIpcEventHandle_t ends the slot descriptor");
static_assert(spec::SubscriberSlot::ack_event::offset == 64 &&
              spec::SubscriberSlot::ack_event::size == 64);
static_assert(spec::raw(spec::MessageType::HELLO_REQ) == 1);
static_assert(spec::raw(spec::Error::OK) == 0);
static_assert(spec::struct_index("FrameMeta") != spec::kNotFound &&
              spec::kStructs[spec::struct_index("FrameMeta")].size == 64);
static_assert(spec::kFields[spec::field_index("SegmentHeader", "write_seq")].offset == 128);
static_assert(spec::struct_index("NoSuchStruct") == spec::kNotFound);

TEST(SpecHeader, FixedSizes) {
  ASSERT_NE(spec::find_struct("FrameMeta"), nullptr);
  EXPECT_EQ(spec::find_struct("FrameMeta")->size, 64u);
  EXPECT_EQ(spec::find_field("SegmentHeader", "write_seq")->offset, 128u);
  EXPECT_EQ(spec::FrameMeta::size, 64u);
  EXPECT_EQ(spec::SlotDescriptor::size, 192u);
  EXPECT_EQ(spec::SubscriberSlot::size, 128u);
  EXPECT_EQ(spec::SegmentHeader::size, 256u);
}

TEST(SpecHeader, FieldTableCoversEveryStructExactly) {
  // Every byte of every struct belongs to exactly one field, as the table lists them.
  for (const auto& s : spec::kStructs) {
    std::vector<int> owners(s.size, 0);
    for (const auto& f : spec::kFields) {
      if (f.struct_name != s.name) continue;
      ASSERT_LE(f.offset + f.size, s.size) << s.name << "." << f.name;
      for (std::size_t i = f.offset; i < f.offset + f.size; ++i)
        ++owners[i];
      if (f.atomic) {
        EXPECT_TRUE(f.size == 4 || f.size == 8) << s.name << "." << f.name;
        EXPECT_EQ(f.offset % f.size, 0u) << s.name << "." << f.name;
      }
    }
    for (std::size_t i = 0; i < s.size; ++i) {
      EXPECT_EQ(owners[i], 1) << s.name << " byte " << i;
    }
  }
}

TEST(SpecHeader, MessagesAndErrorsAreUnique) {
  EXPECT_EQ(spec::kMessages.size(), 8u);
  std::set<unsigned> types;
  for (const auto& m : spec::kMessages) {
    EXPECT_TRUE(types.insert(m.type).second) << m.name;
    const auto* payload = spec::find_struct(m.payload);
    ASSERT_NE(payload, nullptr) << m.name;
    EXPECT_GE(m.min_length, payload->size) << m.name;
    EXPECT_EQ(spec::message_name(m.type), m.name);
  }
  std::set<std::uint32_t> values;
  for (const auto& e : spec::kErrors) {
    EXPECT_TRUE(values.insert(e.value).second) << e.name;
  }
  EXPECT_EQ(spec::error_name(spec::raw(spec::Error::PACKET_OVERRUN)), "PACKET_OVERRUN");
  EXPECT_EQ(spec::error_name(0xFFFFFFFFu), "");
}

TEST(SpecHeader, RequirementsHaveWellFormedIds) {
  std::set<std::string_view> ids;
  for (const auto& r : spec::kRequirements) {
    EXPECT_TRUE(ids.insert(r.id).second) << r.id;
    EXPECT_FALSE(r.section.empty()) << r.id;
    EXPECT_FALSE(spec::level_name(r.level).empty()) << r.id;
    EXPECT_EQ(spec::find_requirement(r.id), &r);
  }
  EXPECT_EQ(spec::find_requirement("NO-SUCH-99"), nullptr);
  EXPECT_EQ(spec::requirement_index("NO-SUCH-99"), spec::kNotFound);
}

TEST(SpecHeader, TransitionsNameDeclaredErrorsOrFields) {
  for (const auto& t : spec::kTransitions) {
    EXPECT_FALSE(t.machine.empty());
    EXPECT_FALSE(t.from.empty());
    EXPECT_FALSE(t.to.empty());
  }
}
