#include "architectures.h"

namespace pyllama {

const std::vector<ArchInfo>& architectures() {
    static const std::vector<ArchInfo> table = {
        // name       family          decoder neox   qk_norm qkv_bias post_norms swa_period
        {"llama",     Family::Llama,  true,   false, false,  false,   false,     0},
        {"mistral",   Family::Llama,  true,   false, false,  false,   false,     0},
        {"granite",   Family::Llama,  true,   false, false,  false,   false,     0},
        {"smollm3",   Family::Llama,  true,   false, false,  false,   false,     0},
        {"qwen2",     Family::Llama,  true,   true,  false,  true,    false,     0},
        {"qwen3",     Family::Llama,  true,   true,  true,   false,   false,     0},
        {"gemma3",    Family::Gemma3, true,   true,  true,   false,   true,      6},
        {"bert",      Family::Bert,   false,  false, false,  false,   false,     0},
    };
    return table;
}

const ArchInfo* find_architecture(const std::string& name) {
    for (const ArchInfo& a : architectures())
        if (name == a.name) return &a;
    return nullptr;
}

const char* family_name(Family f) {
    switch (f) {
        case Family::Llama: return "llama";
        case Family::Gemma3: return "gemma3";
        case Family::Bert: return "bert";
    }
    return "?";
}

}  // namespace pyllama
