"""The Symfony 5.4 test app (app/) and the servers that run it: fastrr with Fastrr\\Symfony\\Runtime,
and Debian's nginx + php-fpm with Symfony's front-controller location."""
