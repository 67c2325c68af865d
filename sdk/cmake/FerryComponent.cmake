# ferry_add_component(<name> SOURCES <file>... [LIBRARIES <lib>...]
#                     [INCLUDE_DIRECTORIES <dir>...] [NO_INSTALL])
#
# Builds a ferry component: a MODULE library named <name>.so (no "lib"
# prefix) that the host loads with dlopen. The library is built
#   - as C11 with _GNU_SOURCE, against the SDK headers and jansson;
#   - with hidden visibility, so the only exported symbol is the entry
#     function ferry.h marks FERRY_EXPORT, and with --exclude-libs,ALL so a
#     static library linked in cannot export symbols either (two components
#     exporting the same name would interpose on each other);
#   - with -Wl,-z,defs: every symbol is resolved at link time, since the
#     host exports nothing for a component to bind to.
# The .so lands in FERRY_COMPONENT_OUTPUT_DIRECTORY when that is set (pass
# it with -D out of tree), and is installed to FERRY_COMPONENT_INSTALL_DIR
# (default <libdir>/ferry/components) unless NO_INSTALL is given.
#
# Expects FERRY_SDK_INCLUDE_DIR to name the directory that holds
# ferry/ferry.h: the ferry tree sets it before including this file, and the
# installed FerrySDKConfig.cmake sets it to the installed headers.
include_guard(GLOBAL)

if(NOT TARGET PkgConfig::FERRY_JANSSON)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(FERRY_JANSSON REQUIRED IMPORTED_TARGET GLOBAL jansson)
endif()

function(ferry_add_component name)
  cmake_parse_arguments(ARG "NO_INSTALL" ""
                        "SOURCES;LIBRARIES;INCLUDE_DIRECTORIES" ${ARGN})
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR
      "ferry_add_component(${name}): unknown arguments: ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "ferry_add_component(${name}): SOURCES is required")
  endif()
  if(NOT FERRY_SDK_INCLUDE_DIR OR NOT EXISTS "${FERRY_SDK_INCLUDE_DIR}/ferry/ferry.h")
    message(FATAL_ERROR
      "ferry_add_component(${name}): FERRY_SDK_INCLUDE_DIR ('${FERRY_SDK_INCLUDE_DIR}') "
      "does not contain ferry/ferry.h; use find_package(FerrySDK)")
  endif()
  get_property(_languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  if(NOT "C" IN_LIST _languages)
    message(FATAL_ERROR
      "ferry_add_component(${name}): enable C in project() first")
  endif()

  add_library(${name} MODULE ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${name}
    C_STANDARD 11
    C_STANDARD_REQUIRED ON
    C_EXTENSIONS OFF
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(FERRY_COMPONENT_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES
      LIBRARY_OUTPUT_DIRECTORY ${FERRY_COMPONENT_OUTPUT_DIRECTORY})
  endif()
  target_include_directories(${name} PRIVATE ${FERRY_SDK_INCLUDE_DIR}
                             ${ARG_INCLUDE_DIRECTORIES})
  target_compile_definitions(${name} PRIVATE _GNU_SOURCE)
  target_link_options(${name} PRIVATE -Wl,-z,defs -Wl,--exclude-libs,ALL)
  target_link_libraries(${name} PRIVATE PkgConfig::FERRY_JANSSON ${ARG_LIBRARIES})

  if(NOT ARG_NO_INSTALL)
    if(NOT DEFINED FERRY_COMPONENT_INSTALL_DIR)
      include(GNUInstallDirs)
      set(FERRY_COMPONENT_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/ferry/components)
    endif()
    install(TARGETS ${name} LIBRARY DESTINATION ${FERRY_COMPONENT_INSTALL_DIR})
  endif()
endfunction()
