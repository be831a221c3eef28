/*
 * err — names for the shared error codes.
 */
#include "err.h"

const char *err_strerror(int code)
{
        switch (code) {
        case ERR_OK:
                return "ok";
        case ERR_INVALID:
                return "invalid input";
        case ERR_NOT_FOUND:
                return "not found";
        case ERR_CONFLICT:
                return "conflict";
        case ERR_TOO_LARGE:
                return "too large";
        case ERR_METHOD:
                return "method not allowed";
        case ERR_MEDIA_TYPE:
                return "unsupported media type";
        case ERR_UNAVAILABLE:
                return "service unavailable";
        case ERR_INTERNAL:
                return "internal error";
        case ERR_BAD_GATEWAY:
                return "bad gateway";
        case ERR_UNAUTHORIZED:
                return "unauthorized";
        case ERR_FORBIDDEN:
                return "forbidden";
        case ERR_RATE_LIMITED:
                return "too many requests";
        }
        return "unknown error";
}
