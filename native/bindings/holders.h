// The Python-side owners of native objects that borrow memory: each keeps
// references to what its object points into, so nothing is freed under it.
#pragma once

#include <memory>
#include <vector>

#include "bindings.h"
#include "../models/context.h"
#include "../models/lora.h"
#include "../models/model.h"

// A Model plus references to the arrays its weights point into.
struct ModelHolder {
    std::unique_ptr<pyllama::Model> model;
    std::vector<py::object> keep;
};

// A LoRA adapter plus references to the arrays its A/B matrices point into.
struct LoraHolder {
    std::unique_ptr<pyllama::LoraAdapter> adapter;
    std::vector<py::object> keep;
};

// A Context plus references to its model and attached adapters, so they outlive it.
struct ContextHolder {
    std::unique_ptr<pyllama::Context> ctx;
    py::object model;
    std::vector<py::object> loras;
};
