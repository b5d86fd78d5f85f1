# install.cmake: what `cmake --install` puts in a prefix so others can link libcuframes:
#   lib/libcuframes.so.<version> (+ SONAME link), lib/libcuframes.a, include/cuframes/cuframes.h,
#   lib/cmake/cuframes/ (find_package(cuframes): cuframes::cuframes shared,
#   cuframes::cuframes_static), lib/pkgconfig/cuframes.pc (shared; --static adds what the
#   archive needs), bin/cuframes-pub, bin/cuframes-sub (the adapters a harness drives).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set_target_properties(cuframes_shared PROPERTIES EXPORT_NAME cuframes)
set_target_properties(cuframes PROPERTIES EXPORT_NAME cuframes_static)

install(TARGETS cuframes cuframes_shared EXPORT cuframesTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_COMPONENT Development
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES include/cuframes/cuframes.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/cuframes)
install(TARGETS cuframes-pub cuframes-sub RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

set(CUFRAMES_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/cuframes)
install(EXPORT cuframesTargets NAMESPACE cuframes:: DESTINATION ${CUFRAMES_CMAKE_DIR})
configure_package_config_file(cmake/cuframesConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/cuframesConfig.cmake INSTALL_DESTINATION ${CUFRAMES_CMAKE_DIR})
# Before 1.0 a minor release may change the ABI (the SOVERSION says so): same minor only.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/cuframesConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/cuframesConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/cuframesConfigVersion.cmake
        DESTINATION ${CUFRAMES_CMAKE_DIR})

# pkg-config: the static archive also needs the C++ runtime (and cudart when CUDA is built in).
set(CUFRAMES_PC_LIBS_PRIVATE "-lstdc++ -lpthread")
if(CUFRAMES_WITH_CUDA)
  set(CUFRAMES_PC_LIBS_PRIVATE "-L${CUDAToolkit_LIBRARY_DIR} -lcudart_static -ldl -lrt ${CUFRAMES_PC_LIBS_PRIVATE}")
endif()
# Relocatable: the prefix is found from the .pc file's own place, so an installed tree can be
# moved (or installed with --prefix other than CMAKE_INSTALL_PREFIX) and still resolve.
file(RELATIVE_PATH CUFRAMES_PC_TO_PREFIX /root/${CMAKE_INSTALL_LIBDIR}/pkgconfig /root)
configure_file(cmake/cuframes.pc.in ${CMAKE_CURRENT_BINARY_DIR}/cuframes.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/cuframes.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
