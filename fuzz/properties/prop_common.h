// prop_common.h: helpers shared by the RapidCheck property tests of fuzz/properties/: printing
// of cuframes::Status in counterexamples.
#ifndef CUFRAMES_FUZZ_PROPERTIES_PROP_COMMON_H_
#define CUFRAMES_FUZZ_PROPERTIES_PROP_COMMON_H_

#include <ostream>

#include "status.h"

namespace cuframes {

// RapidCheck finds this by argument-dependent lookup: "PEER_CLOSED" instead of "<???>".
inline void showValue(Status s, std::ostream& os) {
  os << StatusName(s);
}

}  // namespace cuframes

#endif  // CUFRAMES_FUZZ_PROPERTIES_PROP_COMMON_H_
