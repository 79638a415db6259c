// Model (weights + hyper-parameters) and Context (KV cache + decode).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>

#include "bindings.h"
#include "holders.h"

using namespace pyllama;

void register_model(py::module_& m) {
    py::register_exception<ContextFull>(m, "ContextFull", PyExc_RuntimeError);

    py::class_<ModelParams>(m, "ModelParams", "Hyper-parameters of a decoder model (from GGUF metadata).")
        .def(py::init<>())
        .def_readwrite("arch", &ModelParams::arch)
        .def_readwrite("n_vocab", &ModelParams::n_vocab)
        .def_readwrite("n_embd", &ModelParams::n_embd)
        .def_readwrite("n_layer", &ModelParams::n_layer)
        .def_readwrite("n_head", &ModelParams::n_head)
        .def_readwrite("n_head_kv", &ModelParams::n_head_kv)
        .def_readwrite("head_dim_k", &ModelParams::head_dim_k)
        .def_readwrite("head_dim_v", &ModelParams::head_dim_v)
        .def_readwrite("n_ff", &ModelParams::n_ff)
        .def_readwrite("n_rot", &ModelParams::n_rot)
        .def_readwrite("norm_eps", &ModelParams::norm_eps)
        .def_readwrite("rope_base", &ModelParams::rope_base)
        .def_readwrite("rope_scale", &ModelParams::rope_scale)
        .def_readwrite("rope_base_swa", &ModelParams::rope_base_swa)
        .def_readwrite("rope_scale_swa", &ModelParams::rope_scale_swa)
        .def_readwrite("rope_freq_factors", &ModelParams::rope_freq_factors)
        .def_readwrite("rope_ext_factor", &ModelParams::rope_ext_factor)
        .def_readwrite("rope_attn_factor", &ModelParams::rope_attn_factor)
        .def_readwrite("rope_beta_fast", &ModelParams::rope_beta_fast)
        .def_readwrite("rope_beta_slow", &ModelParams::rope_beta_slow)
        .def_readwrite("rope_n_ctx_orig", &ModelParams::rope_n_ctx_orig)
        .def_readwrite("sliding_window", &ModelParams::sliding_window)
        .def_readwrite("swa_layers", &ModelParams::swa_layers)
        .def_readwrite("final_logit_softcap", &ModelParams::final_logit_softcap)
        .def_readwrite("attn_logit_softcap", &ModelParams::attn_logit_softcap);

    py::class_<ModelHolder>(m, "Model", "Weights of a decoder model, borrowed from arrays the model keeps alive.")
        .def(py::init([](const ModelParams& p) {
                 auto pm = std::make_unique<ModelHolder>();
                 pm->model = std::make_unique<Model>(p);
                 return pm;
             }),
             py::arg("params"))
        .def("set_tensor", [](ModelHolder& pm, const std::string& role, int64_t layer, py::array data, uint32_t type,
                              int64_t n_rows, int64_t n_cols) {
            const TypeTraits* tr = type_traits(type);
            if (!tr) throw py::value_error("tensor " + role + ": unknown ggml type " + std::to_string(type));
            if (!(data.flags() & py::array::c_style)) throw py::value_error("tensor data must be contiguous");
            if (n_cols % tr->block_size || (size_t)data.nbytes() != row_size((GgmlType)type, n_cols) * (size_t)n_rows)
                throw py::value_error("tensor " + role + ": data size does not match its shape and type");
            pm.keep.push_back(data);
            const void* ptr = data.data();
            py::gil_scoped_release r;
            pm.model->set_tensor(role, layer, ptr, (GgmlType)type, n_rows, n_cols);
        }, py::arg("role"), py::arg("layer"), py::arg("data"), py::arg("type"), py::arg("n_rows"), py::arg("n_cols"))
        .def("finalize", [](ModelHolder& pm) { pm.model->finalize(); }, py::call_guard<py::gil_scoped_release>(),
             "Check every tensor and pack Q4_0/Q4_1 weights for the matvec kernels.")
        .def_property_readonly("packed_bytes", [](const ModelHolder& pm) { return pm.model->packed_bytes(); })
        .def_property_readonly("n_vocab", [](const ModelHolder& pm) { return pm.model->params().n_vocab; })
        .def_property_readonly("n_embd", [](const ModelHolder& pm) { return pm.model->params().n_embd; })
        .def_property_readonly("is_encoder", [](const ModelHolder& pm) { return pm.model->is_encoder(); },
                               "a non-causal encoder (BERT family): hidden states only, no KV cache")
        .def_property_readonly("n_cls_out", [](const ModelHolder& pm) { return pm.model->n_cls_out(); },
                               "outputs of the classifier head (cls, cls.output); 0 = no head");

    py::class_<ContextHolder>(m, "Context", "A KV cache, compute threads and scratch over a Model.")
        .def(py::init([](py::object model, int64_t n_ctx, int64_t n_ubatch, int n_threads, const std::string& tk,
                         const std::string& tv, int poll, std::vector<int> cpus) {
                 ModelHolder& pm = model.cast<ModelHolder&>();
                 ContextParams cp;
                 cp.n_ctx = n_ctx;
                 cp.n_ubatch = n_ubatch;
                 cp.n_threads = n_threads;
                 cp.poll = poll;
                 cp.cpus = std::move(cpus);
                 cp.type_k = kv_cache_type(tk);
                 cp.type_v = kv_cache_type(tv);
                 auto pc = std::make_unique<ContextHolder>();
                 pc->ctx = std::make_unique<Context>(*pm.model, cp);
                 pc->model = model;
                 return pc;
             }),
             py::arg("model"), py::kw_only(), py::arg("n_ctx") = 4096, py::arg("n_ubatch") = 512,
             py::arg("n_threads") = 0, py::arg("type_k") = "f16", py::arg("type_v") = "f16", py::arg("poll") = 50,
             py::arg("cpus") = std::vector<int>{})
        .def("decode", [](ContextHolder& pc, IntArray tokens, IntArray pos, SeqArray seqs, FlagArray logits,
                          bool embeddings) {
            const py::ssize_t n = tokens.size();
            if (pos.size() != n || seqs.size() != n || logits.size() != n)
                throw py::value_error("tokens, pos, seqs and logits must have the same length");
            int64_t n_out = 0;
            for (py::ssize_t i = 0; i < n; ++i) n_out += logits.data()[i] != 0;
            const int64_t width = pc.ctx->output_width(embeddings);
            py::array_t<float> out({(py::ssize_t)n_out, (py::ssize_t)width});
            Batch b;
            b.n_tokens = n;
            b.token = tokens.data();
            b.pos = pos.data();
            b.seqs = seqs.data();
            b.logits = logits.data();
            b.embd = embeddings;
            float* op = out.mutable_data();
            {
                py::gil_scoped_release r;
                pc.ctx->decode(b, op);
            }
            return out;
        }, py::arg("tokens"), py::arg("pos"), py::arg("seqs"), py::arg("logits"), py::kw_only(),
           py::arg("embeddings") = false,
           "One forward pass over a batch: tokens with their positions, sequence bit sets and output flags. "
           "Returns the logits (n_outputs, n_vocab) of the flagged tokens in batch order, or with embeddings "
           "their final hidden states (n_outputs, n_embd). An encoder needs embeddings, and each sequence "
           "whole in the batch.")
        .def("classify", [](ContextHolder& pc, FloatArray x) {
            const int64_t n_embd = pc.ctx->model().params().n_embd;
            if (x.ndim() != 2 || x.shape(1) != n_embd)
                throw py::value_error("classify takes rows of n_embd = " + std::to_string(n_embd) + " floats");
            const int64_t n = x.shape(0), n_cls = pc.ctx->model().n_cls_out();
            py::array_t<float> out({(py::ssize_t)n, (py::ssize_t)n_cls});
            const float* xp = x.data();
            float* op = out.mutable_data();
            {
                py::gil_scoped_release r;
                pc.ctx->classify(xp, n, op);
            }
            return out;
        }, py::arg("x"), "The reranker's classifier head over pooled rows (n, n_embd): scores (n, n_cls_out).")
        .def("set_control_vector", [](ContextHolder& pc, FloatArray v) {
            std::vector<float> data(v.data(), v.data() + v.size());
            pc.ctx->set_control_vector(std::move(data));
        }, py::arg("v"), "Control vectors (n_layer * n_embd floats, layer by layer) added to each layer's output; "
                         "an empty array removes them.")
        .def("attach_lora", [](ContextHolder& pc, py::object adapter) {
            LoraHolder& lh = adapter.cast<LoraHolder&>();
            const int id = pc.ctx->attach_lora(lh.adapter.get());
            pc.loras.push_back(adapter);
            return id;
        }, py::arg("adapter"), "Attach a finalized LoraAdapter (scale 0 for every sequence); returns its id.")
        .def("set_lora_scales", [](ContextHolder& pc, int seq, std::vector<float> scales) {
            pc.ctx->set_lora_scales(seq, scales);
        }, py::arg("seq"), py::arg("scales"),
           "The scale of each attached adapter (by id) for one sequence; adapters left out get 0.")
        .def("lora_scales", [](const ContextHolder& pc, int seq) { return pc.ctx->lora_scales(seq); },
             py::arg("seq"))
        .def_property_readonly("n_lora", [](const ContextHolder& pc) { return pc.ctx->n_lora(); })
        .def_property_readonly("kv", [](ContextHolder& pc) -> KvCache& { return pc.ctx->kv(); },
                               py::return_value_policy::reference_internal)
        .def_property_readonly("n_threads", [](const ContextHolder& pc) { return pc.ctx->n_threads(); })
        .def_property_readonly("n_ctx", [](const ContextHolder& pc) { return pc.ctx->kv().size(); });
}
