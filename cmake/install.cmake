# What `cmake --install` puts where, and the .deb CPack makes of it:
#   bin/procforge
#   lib/libprocforge.so.0 (exports the public API only) and lib/libprocforge.a
#   include/procforge/*.hpp, procforge_client.h
#   lib/cmake/procforge/ (find_package(procforge) -> procforge::procforge, procforge::procforge_static)
#   lib/pkgconfig/procforge.pc
#   lib/procforge/ helpers found relative to bin/procforge (the LD_AUDIT module, the warm-start agent,
#   bench's static target)
#   share/man/man1/ procforge(1) and procforge-SUBCOMMAND(1), generated from the CLI's definitions
#   share/bash-completion/completions/procforge, share/zsh/vendor-completions/_procforge
include(CMakePackageConfigHelpers)

set(PROCFORGE_HELPER_DIR ${CMAKE_INSTALL_LIBDIR}/procforge)
set(PROCFORGE_SUBCOMMANDS explain run exec profile batch bench version demo completion manpage)

# Pages and completions come from the built binary itself (`procforge manpage`,
# `procforge completion`), so they say exactly what the parser accepts.
set(generated ${CMAKE_CURRENT_BINARY_DIR}/share)
set(pages ${generated}/man/procforge.1)
foreach(sub ${PROCFORGE_SUBCOMMANDS})
  list(APPEND pages ${generated}/man/procforge-${sub}.1)
endforeach()
string(REPLACE ";" "," subcommand_list "${PROCFORGE_SUBCOMMANDS}")
add_custom_command(OUTPUT ${pages} ${generated}/bash/procforge ${generated}/zsh/_procforge
  COMMAND ${CMAKE_COMMAND} -DPROCFORGE=$<TARGET_FILE:procforge> -DOUT=${generated}
    -DSUBCOMMANDS=${subcommand_list} -P ${CMAKE_CURRENT_SOURCE_DIR}/cmake/manpages.cmake
  DEPENDS procforge ${CMAKE_CURRENT_SOURCE_DIR}/cmake/manpages.cmake
  COMMENT "Manual pages and shell completions from procforge's option definitions" VERBATIM)
add_custom_target(procforge_docs ALL DEPENDS ${pages} ${generated}/bash/procforge ${generated}/zsh/_procforge)

install(TARGETS procforge RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS libprocforge_shared libprocforge EXPORT procforgeTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_COMPONENT Development
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/procforge DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET procforge_audit)
  install(TARGETS procforge_audit LIBRARY DESTINATION ${PROCFORGE_HELPER_DIR})
endif()
if(TARGET procforge_warm)
  install(TARGETS procforge_warm LIBRARY DESTINATION ${PROCFORGE_HELPER_DIR})
endif()
if(TARGET procforge_exit0)
  install(TARGETS procforge_exit0 RUNTIME DESTINATION ${PROCFORGE_HELPER_DIR})
endif()
install(FILES ${pages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
# procforge-spawn is C with its own few options: its page is written by hand.
install(FILES docs/man/procforge-spawn.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${generated}/bash/procforge DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
install(FILES ${generated}/zsh/_procforge DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)

# find_package(procforge): procforge::procforge is the shared library,
# procforge::procforge_static the static one (which needs fmt's headers).
set_target_properties(libprocforge_shared PROPERTIES EXPORT_NAME procforge)
set_target_properties(libprocforge PROPERTIES EXPORT_NAME procforge_static)
install(EXPORT procforgeTargets NAMESPACE procforge:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/procforge)
configure_package_config_file(cmake/procforgeConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/procforgeConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/procforge)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/procforgeConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/procforgeConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/procforgeConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/procforge)

file(RELATIVE_PATH PROCFORGE_PC_TO_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
configure_file(cmake/procforge.pc.in ${CMAKE_CURRENT_BINARY_DIR}/procforge.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/procforge.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# cpack -G DEB in the build directory: procforge_VERSION_amd64.deb.
set(CPACK_PACKAGE_NAME procforge)
set(CPACK_PACKAGE_VENDOR procforge)
set(CPACK_PACKAGE_CONTACT "procforge developers <procforge@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Linux process creation, stage by stage: explain, run, exec, profile")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
include(CPack)
