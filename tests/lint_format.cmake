# Fails listing the files that clang-format would change.
cmake_minimum_required(VERSION 3.25)
file(GLOB_RECURSE files
  ${ROOT}/libsocks5client/*.cpp ${ROOT}/libsocks5client/*.hpp
  ${ROOT}/tools/*.cpp ${ROOT}/tools/*.hpp ${ROOT}/shim/*.cpp ${ROOT}/shim/*.hpp
  ${ROOT}/settings/*.cpp ${ROOT}/settings/*.hpp ${ROOT}/core/*.cpp ${ROOT}/core/*.hpp
  ${ROOT}/relay/*.cpp ${ROOT}/relay/*.hpp
  ${ROOT}/tests/*.cpp ${ROOT}/tests/*.hpp ${ROOT}/fuzz/*.cpp ${ROOT}/fuzz/*.hpp
  ${ROOT}/examples/*.cpp ${ROOT}/bench/*.cpp)
set(bad "")
foreach(f ${files})
  execute_process(COMMAND ${CLANG_FORMAT} --dry-run -Werror ${f}
    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
  if(NOT rc EQUAL 0)
    string(APPEND bad "  ${f}\n")
  endif()
endforeach()
if(bad)
  message(FATAL_ERROR "not clang-formatted (run clang-format -i):\n${bad}")
endif()
