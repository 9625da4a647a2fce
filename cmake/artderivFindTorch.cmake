# find_package(Torch) for artderiv and its downstream users.
# pip's CUDA build of torch ships libnvrtc in the nvidia-* wheels beside it,
# where a minimal CUDA toolkit has none: point Torch's CMake config at it.
if(NOT CUDA_nvrtc_LIBRARY)
  foreach(prefix IN LISTS CMAKE_PREFIX_PATH)
    file(GLOB nvrtc_candidates "${prefix}/../../../nvidia/*/lib/libnvrtc.so*"
                               "${prefix}/../../../nvidia/cuda_nvrtc/lib/libnvrtc.so*")
    list(FILTER nvrtc_candidates EXCLUDE REGEX "builtins|alt")
    if(nvrtc_candidates)
      list(GET nvrtc_candidates 0 nvrtc)
      set(CUDA_nvrtc_LIBRARY "${nvrtc}" CACHE FILEPATH "libnvrtc from the nvidia pip wheels")
      break()
    endif()
  endforeach()
endif()
find_package(Torch REQUIRED)
