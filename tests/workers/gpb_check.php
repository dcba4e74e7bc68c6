<?php

/*
 * Google's protobuf library for PHP (google/protobuf, pure-PHP runtime, as
 * Debian's php-google-protobuf installs it) against fastrr's http.v1
 * contexts. The message classes are written here by hand, the way protoc
 * would generate them, and their descriptors are built with the library's
 * own descriptor classes and added to its generated pool.
 *
 *   php gpb_check.php request  < http.v1.Request bytes
 *       prints {"google": <decoded by Google's library>, "fastrr": <decoded by
 *       Fastrr\Http\ProtoCodec>} as JSON; bytes values are hex
 *   php gpb_check.php response < {"status":N,"headers":[[name,[hex,...]],...]}
 *       prints the http.v1.Response Google's library serializes
 *
 * Exit status 3: the library is not installed (the test skips).
 */

declare(strict_types=1);

// The autoloaders first: the classes below extend the library's Message.
namespace {
    $lib = \stream_resolve_include_path('Google/Protobuf/Internal/Message.php');
    if ($lib === false) {
        \fwrite(\STDERR, "google/protobuf (php-google-protobuf) is not installed\n");
        exit(3);
    }
    $root = \dirname($lib, 4);
    \spl_autoload_register(static function (string $class) use ($root): void {
        if (\str_starts_with($class, 'Google\\Protobuf\\') || \str_starts_with($class, 'GPBMetadata\\Google\\')) {
            $file = $root . '/' . \str_replace('\\', '/', $class) . '.php';
            if (\is_file($file)) {
                require $file;
            }
        }
    });
    require __DIR__ . '/../../php/autoload.php';
}

namespace RoadRunner\HTTP\DTO\V1 {

    use Google\Protobuf\Internal\GPBType;
    use Google\Protobuf\Internal\GPBUtil;
    use Google\Protobuf\Internal\Message;
    use Google\Protobuf\Internal\RepeatedField;

    final class HeaderValue extends Message
    {
        private $value;

        public function __construct($data = null)
        {
            \FastrrTests\Gpb::init();
            parent::__construct($data);
        }

        public function getValue()
        {
            return $this->value;
        }

        public function setValue($var)
        {
            $this->value = GPBUtil::checkRepeatedField($var, GPBType::BYTES);
            return $this;
        }
    }

    final class Request extends Message
    {
        protected $remote_addr = '';
        protected $protocol = '';
        protected $method = '';
        protected $uri = '';
        private $header;
        private $cookies;
        protected $raw_query = '';
        protected $parsed = false;
        protected $uploads = '';
        private $attributes;

        public function __construct($data = null)
        {
            \FastrrTests\Gpb::init();
            parent::__construct($data);
        }

        public function getRemoteAddr() { return $this->remote_addr; }
        public function setRemoteAddr($var) { GPBUtil::checkString($var, true); $this->remote_addr = $var; return $this; }
        public function getProtocol() { return $this->protocol; }
        public function setProtocol($var) { GPBUtil::checkString($var, true); $this->protocol = $var; return $this; }
        public function getMethod() { return $this->method; }
        public function setMethod($var) { GPBUtil::checkString($var, true); $this->method = $var; return $this; }
        public function getUri() { return $this->uri; }
        public function setUri($var) { GPBUtil::checkString($var, true); $this->uri = $var; return $this; }
        public function getHeader() { return $this->header; }
        public function setHeader($var)
        {
            $this->header = GPBUtil::checkMapField($var, GPBType::STRING, GPBType::MESSAGE, HeaderValue::class);
            return $this;
        }
        public function getCookies() { return $this->cookies; }
        public function setCookies($var)
        {
            $this->cookies = GPBUtil::checkMapField($var, GPBType::STRING, GPBType::MESSAGE, HeaderValue::class);
            return $this;
        }
        public function getRawQuery() { return $this->raw_query; }
        public function setRawQuery($var) { GPBUtil::checkString($var, true); $this->raw_query = $var; return $this; }
        public function getParsed() { return $this->parsed; }
        public function setParsed($var) { GPBUtil::checkBool($var); $this->parsed = $var; return $this; }
        public function getUploads() { return $this->uploads; }
        public function setUploads($var) { GPBUtil::checkString($var, false); $this->uploads = $var; return $this; }
        public function getAttributes() { return $this->attributes; }
        public function setAttributes($var)
        {
            $this->attributes = GPBUtil::checkMapField($var, GPBType::STRING, GPBType::MESSAGE, HeaderValue::class);
            return $this;
        }
    }

    final class Response extends Message
    {
        protected $status = 0;
        private $headers;

        public function __construct($data = null)
        {
            \FastrrTests\Gpb::init();
            parent::__construct($data);
        }

        public function getStatus() { return $this->status; }
        public function setStatus($var) { GPBUtil::checkInt64($var); $this->status = $var; return $this; }
        public function getHeaders() { return $this->headers; }
        public function setHeaders($var)
        {
            $this->headers = GPBUtil::checkMapField($var, GPBType::STRING, GPBType::MESSAGE, HeaderValue::class);
            return $this;
        }
    }
}

namespace FastrrTests {

    use Google\Protobuf\Internal\DescriptorPool;
    use Google\Protobuf\Internal\DescriptorProto;
    use Google\Protobuf\Internal\FieldDescriptorProto;
    use Google\Protobuf\Internal\FieldDescriptorProto\Label;
    use Google\Protobuf\Internal\FieldDescriptorProto\Type;
    use Google\Protobuf\Internal\FileDescriptorProto;
    use Google\Protobuf\Internal\FileDescriptorSet;
    use Google\Protobuf\Internal\FileOptions;
    use Google\Protobuf\Internal\MessageOptions;

    /** The http.v1 descriptors (RoadRunner's api/http/v1/http.proto, fields as there). */
    final class Gpb
    {
        private static bool $done = false;

        public static function init(): void
        {
            if (self::$done) {
                return;
            }
            self::$done = true;
            $field = static fn (string $name, int $number, int $type, int $label = Label::LABEL_OPTIONAL, string $typeName = ''): FieldDescriptorProto
                => new FieldDescriptorProto(['name' => $name, 'number' => $number, 'type' => $type, 'label' => $label]
                    + ($typeName !== '' ? ['type_name' => $typeName] : []));
            $map = static function (DescriptorProto $msg, string $name, int $number) use ($field): void {
                $entry = \str_replace('_', '', \ucwords($name, '_')) . 'Entry';
                $nested = \iterator_to_array($msg->getNestedType());
                $nested[] = new DescriptorProto([
                    'name' => $entry,
                    'field' => [
                        $field('key', 1, Type::TYPE_STRING),
                        $field('value', 2, Type::TYPE_MESSAGE, Label::LABEL_OPTIONAL, '.http.v1.HeaderValue'),
                    ],
                    'options' => new MessageOptions(['map_entry' => true]),
                ]);
                $msg->setNestedType($nested);
                $fields = \iterator_to_array($msg->getField());
                $fields[] = $field($name, $number, Type::TYPE_MESSAGE, Label::LABEL_REPEATED,
                    '.http.v1.' . $msg->getName() . '.' . $entry);
                $msg->setField($fields);
            };

            $headerValue = new DescriptorProto([
                'name' => 'HeaderValue',
                'field' => [$field('value', 1, Type::TYPE_BYTES, Label::LABEL_REPEATED)],
            ]);
            $request = new DescriptorProto(['name' => 'Request', 'field' => [
                $field('remote_addr', 1, Type::TYPE_STRING),
                $field('protocol', 2, Type::TYPE_STRING),
                $field('method', 3, Type::TYPE_STRING),
                $field('uri', 4, Type::TYPE_STRING),
            ]]);
            $map($request, 'header', 5);
            $map($request, 'cookies', 6);
            $fields = \iterator_to_array($request->getField());
            $fields[] = $field('raw_query', 7, Type::TYPE_STRING);
            $fields[] = $field('parsed', 8, Type::TYPE_BOOL);
            $fields[] = $field('uploads', 9, Type::TYPE_BYTES);
            $request->setField($fields);
            $map($request, 'attributes', 10);
            $response = new DescriptorProto(['name' => 'Response', 'field' => [
                $field('status', 1, Type::TYPE_INT64),
            ]]);
            $map($response, 'headers', 2);

            $file = new FileDescriptorProto([
                'name' => 'fastrr_tests/http_v1.proto',
                'package' => 'http.v1',
                'syntax' => 'proto3',
                'message_type' => [$headerValue, $request, $response],
                'options' => new FileOptions(['php_namespace' => 'RoadRunner\\HTTP\\DTO\\V1']),
            ]);
            $set = new FileDescriptorSet(['file' => [$file]]);
            DescriptorPool::getGeneratedPool()->internalAddGeneratedFile($set->serializeToString(), true);
        }
    }
}

namespace {

    use Fastrr\Http\ProtoCodec;
    use RoadRunner\HTTP\DTO\V1\HeaderValue;
    use RoadRunner\HTTP\DTO\V1\Request;
    use RoadRunner\HTTP\DTO\V1\Response;


    $input = (string)\stream_get_contents(\STDIN);
    $mode = $argv[1] ?? '';

    if ($mode === 'request') {
        $hexMap = static function ($map): array {
            $out = [];
            foreach ($map as $key => $value) {
                $out[] = [$key, \array_map('bin2hex', \iterator_to_array($value->getValue()))];
            }
            return $out;
        };
        $m = new Request();
        $m->mergeFromString($input);
        $google = [
            'remoteAddr' => $m->getRemoteAddr(),
            'protocol' => $m->getProtocol(),
            'method' => $m->getMethod(),
            'uri' => $m->getUri(),
            'headers' => $hexMap($m->getHeader()),
            'cookies' => $hexMap($m->getCookies()),
            'rawQuery' => $m->getRawQuery(),
            'parsed' => $m->getParsed(),
            'uploads' => $m->getUploads(),
            'attributes' => $hexMap($m->getAttributes()),
        ];
        $c = ProtoCodec::decodeRequest($input);
        $pairs = static function (array $map): array {
            $out = [];
            foreach ($map as $key => $values) {
                $out[] = [(string)$key, \array_map('bin2hex', (array)$values)];
            }
            return $out;
        };
        $fastrr = [
            'remoteAddr' => $c['remoteAddr'],
            'protocol' => $c['protocol'],
            'method' => $c['method'],
            'uri' => $c['uri'],
            'headers' => $pairs($c['headers']),
            'cookies' => $pairs($c['cookies']),
            'rawQuery' => $c['rawQuery'],
            'parsed' => $c['parsed'],
            'uploads' => $c['uploads'] === null ? '' : \json_encode($c['uploads'], \JSON_UNESCAPED_SLASHES),
            'attributes' => $pairs($c['attributes']),
        ];
        echo \json_encode(['google' => $google, 'fastrr' => $fastrr], \JSON_THROW_ON_ERROR | \JSON_UNESCAPED_SLASHES), "\n";
        exit(0);
    }

    if ($mode === 'response') {
        $spec = \json_decode($input, true, 16, \JSON_THROW_ON_ERROR);
        $m = new Response();
        $m->setStatus((int)$spec['status']);
        foreach ($spec['headers'] as [$name, $values]) {
            $m->getHeaders()[$name] = new HeaderValue(['value' => \array_map('hex2bin', $values)]);
        }
        echo $m->serializeToString();
        exit(0);
    }

    \fwrite(\STDERR, "usage: php gpb_check.php request|response < input\n");
    exit(2);
}
