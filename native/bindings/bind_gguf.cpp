// parse_gguf(buffer) -> dict with version, alignment, data_offset, metadata
// (key -> (gguf type, python value)) and tensors (name, shape, type, offset, nbytes).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "../gguf/gguf_parser.h"

using namespace pyllama;

namespace {

// Invalid UTF-8 survives as lone surrogates (the bytes stay recoverable).
py::object decode_str(const char* p, size_t n) {
    PyObject* s = PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "surrogateescape");
    if (!s) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(s);
}
py::object decode_str(const uint8_t* base, std::pair<size_t, size_t> ref) {
    return decode_str(reinterpret_cast<const char*>(base + ref.first), ref.second);
}
py::object decode_str(const std::string& s) { return decode_str(s.data(), s.size()); }

const char* numpy_dtype(uint32_t t) {
    switch (t) {
        case GGUF_UINT8: return "<u1";
        case GGUF_INT8: return "<i1";
        case GGUF_UINT16: return "<u2";
        case GGUF_INT16: return "<i2";
        case GGUF_UINT32: return "<u4";
        case GGUF_INT32: return "<i4";
        case GGUF_FLOAT32: return "<f4";
        case GGUF_BOOL: return "?";
        case GGUF_UINT64: return "<u8";
        case GGUF_INT64: return "<i8";
        case GGUF_FLOAT64: return "<f8";
    }
    return nullptr;
}

template <typename T>
T load(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

py::object scalar(const uint8_t* p, uint32_t t) {
    switch (t) {
        case GGUF_UINT8: return py::int_(load<uint8_t>(p));
        case GGUF_INT8: return py::int_(load<int8_t>(p));
        case GGUF_UINT16: return py::int_(load<uint16_t>(p));
        case GGUF_INT16: return py::int_(load<int16_t>(p));
        case GGUF_UINT32: return py::int_(load<uint32_t>(p));
        case GGUF_INT32: return py::int_(load<int32_t>(p));
        case GGUF_FLOAT32: return py::float_(load<float>(p));
        case GGUF_BOOL: return py::bool_(load<uint8_t>(p) != 0);
        case GGUF_UINT64: return py::int_(load<uint64_t>(p));
        case GGUF_INT64: return py::int_(load<int64_t>(p));
        case GGUF_FLOAT64: return py::float_(load<double>(p));
    }
    return py::none();
}

py::dict parse(py::buffer buf) {
    py::buffer_info info = buf.request();
    const uint8_t* base = static_cast<const uint8_t*>(info.ptr);
    const size_t size = (size_t)info.size * (size_t)info.itemsize;
    GgufHeader h;
    {
        py::gil_scoped_release release;
        h = parse_gguf(base, size);
    }
    py::dict meta;
    for (const auto& kv : h.kvs) {
        py::object value;
        if (kv.type == GGUF_STRING) {
            value = decode_str(base, kv.strings[0]);
        } else if (kv.type == GGUF_ARRAY && kv.elem_type == GGUF_STRING) {
            py::list lst(kv.strings.size());
            for (size_t i = 0; i < kv.strings.size(); ++i)
                PyList_SET_ITEM(lst.ptr(), (Py_ssize_t)i, decode_str(base, kv.strings[i]).release().ptr());
            value = lst;
        } else if (kv.type == GGUF_ARRAY) {
            py::dtype dt(numpy_dtype(kv.elem_type));
            // With a data pointer and no base object, pybind11 copies the data.
            value = py::array(dt, py::array::ShapeContainer{(py::ssize_t)kv.count}, py::array::StridesContainer{},
                              base + kv.offset);
        } else {
            value = scalar(base + kv.offset, kv.type);
        }
        const uint32_t shown = kv.type == GGUF_ARRAY ? kv.elem_type : kv.type;
        meta[decode_str(kv.key)] = py::make_tuple(kv.type, shown, value);
    }
    py::list tensors;
    for (const auto& t : h.tensors)
        tensors.append(py::make_tuple(decode_str(t.name), t.ne, t.type, t.offset, t.nbytes));
    py::dict out;
    out["version"] = h.version;
    out["alignment"] = h.alignment;
    out["data_offset"] = h.data_offset;
    out["metadata"] = meta;
    out["tensors"] = tensors;
    return out;
}

}  // namespace

void register_gguf(py::module_& m) {
    py::register_exception<GgufError>(m, "GgufError", PyExc_ValueError);
    m.def("parse_gguf", &parse, py::arg("buffer"),
          "Parse a GGUF header, metadata and tensor table from a buffer (e.g. an mmap).\n"
          "Tensor data is not touched. Raises GgufError on malformed input.");
}
