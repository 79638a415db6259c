// LoraAdapter: a LoRA adapter's A/B matrices, borrowed from arrays it keeps alive.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "holders.h"

using namespace pyllama;

void register_lora(py::module_& m) {
    py::class_<LoraHolder>(m, "LoraAdapter",
                           "A LoRA adapter: per adapted matrix W (n_out, n_in), A (r, n_in) and B (n_out, r); "
                           "at scale s the layer adds s * alpha / r * B (A x) (s alone when alpha is 0).")
        .def(py::init([](int64_t n_layer, float alpha) {
                 auto h = std::make_unique<LoraHolder>();
                 h->adapter = std::make_unique<LoraAdapter>(n_layer, alpha);
                 return h;
             }),
             py::arg("n_layer"), py::kw_only(), py::arg("alpha") = 0.0f)
        .def("set_tensor", [](LoraHolder& h, const std::string& role, int64_t layer, const std::string& half,
                              py::array data, uint32_t type, int64_t n_rows, int64_t n_cols) {
            const TypeTraits* tr = type_traits(type);
            if (!tr) throw py::value_error("LoRA tensor " + role + ": unknown ggml type " + std::to_string(type));
            if (half != "a" && half != "b") throw py::value_error("half must be 'a' or 'b'");
            if (!(data.flags() & py::array::c_style)) throw py::value_error("tensor data must be contiguous");
            if (n_rows <= 0 || n_cols <= 0 || n_cols % tr->block_size ||
                (size_t)data.nbytes() != row_size((GgmlType)type, n_cols) * (size_t)n_rows)
                throw py::value_error("LoRA tensor " + role + ": data size does not match its shape and type");
            h.keep.push_back(data);
            h.adapter->set_tensor(role, layer, half[0], data.data(), (GgmlType)type, n_rows, n_cols);
        }, py::arg("role"), py::arg("layer"), py::arg("half"), py::arg("data"), py::arg("type"), py::arg("n_rows"),
           py::arg("n_cols"), "Attach lora_a ('a') or lora_b ('b') of a role (wq, wk, wv, wo, gate, up, down, output).")
        .def("finalize", [](LoraHolder& h, py::object model) {
            ModelHolder& pm = model.cast<ModelHolder&>();
            h.keep.push_back(model);  // the shapes were checked against this model's weights
            h.adapter->finalize(*pm.model);
        }, py::arg("model"), "Check every pair against the model's weights (ValueError naming the first problem).")
        .def_property_readonly("alpha", [](const LoraHolder& h) { return h.adapter->alpha(); })
        .def_property_readonly("n_pairs", [](const LoraHolder& h) { return h.adapter->n_pairs(); },
                               "matrices the adapter adapts");
}
