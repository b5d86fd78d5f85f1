# cli11.cmake: provides the target CLI11::CLI11 for the adapters' command line (tools/adapter_cli.*).
# CLI11 is header-only. Its CMake package comes with Debian's libcli11-dev; where only the header
# is installed, an interface target around it does the same job.
find_package(CLI11 2 QUIET CONFIG)
if(NOT TARGET CLI11::CLI11)
  find_path(CUFRAMES_CLI11_INCLUDE_DIR CLI/CLI.hpp)
  if(NOT CUFRAMES_CLI11_INCLUDE_DIR)
    message(FATAL_ERROR "cuframes: CLI11 not found (Debian/Ubuntu: libcli11-dev; ci/setup.sh "
                        "installs it)")
  endif()
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  set_target_properties(CLI11::CLI11 PROPERTIES INTERFACE_INCLUDE_DIRECTORIES
                                                "${CUFRAMES_CLI11_INCLUDE_DIR}")
endif()
