// What the binding files share: the register_* function of each (module.cpp
// calls them once) and the numpy array types their signatures take.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>

namespace py = pybind11;

// Inputs are converted (forcecast) to C-contiguous arrays of the element type.
template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;
using FloatArray = CArray<float>;
using IntArray = CArray<int32_t>;   // token ids, positions, cells
using SeqArray = CArray<uint64_t>;  // per token: a bit set of sequence ids
using FlagArray = CArray<uint8_t>;  // per token: 0 or 1

void register_gguf(py::module_& m);
void register_kernels(py::module_& m);
void register_ops(py::module_& m);
void register_tokenizer(py::module_& m);
void register_kv_cache(py::module_& m);
void register_architectures(py::module_& m);
void register_model(py::module_& m);
void register_lora(py::module_& m);
void register_sampling(py::module_& m);
void register_grammar(py::module_& m);
void register_json(py::module_& m);
