#!/bin/sh
# Builds testdata/image from real Debian 12 jars, and testdata/want.tsv
# from them with unzip (see README.md). Run from analyzers/java/testdata
# on Debian 12 with network access to the Debian mirror:
#
#	apt-get install zip unzip   # Debian 12: zip 3.0, unzip 6.0
#	sh make.sh
#
# It does not install the Java packages: apt-get download fetches the
# .deb files and dpkg-deb -x extracts them into a temporary directory.
set -eu
export LC_ALL=C TZ=UTC
here=$(pwd)
img=$here/image
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. The Debian packages (bookworm, all architectures).
(cd "$tmp" && apt-get download libslf4j-java=1.7.32-1 liblog4j2-java=2.19.0-2 \
	libcommons-logging-java=1.2-3 libhamcrest-java=2.2-1)
mkdir "$tmp/deb"
for d in "$tmp"/*.deb; do dpkg-deb -x "$d" "$tmp/deb"; done
jars=$tmp/deb/usr/share/java

# 2. /usr/share/java as Debian installs it: the jars and, beside each,
#    the link Debian ships (with or without the version).
rm -rf "$img"
mkdir -p "$img/usr/share/java"
for j in slf4j-api jul-to-slf4j slf4j-nop log4j-jcl; do
	cp -P "$jars/$j.jar" "$jars/$j-"*.jar "$img/usr/share/java/"
done
cp -P "$jars/commons-logging-adapters-1.2.jar" "$jars/commons-logging-adapters.jar" \
	"$jars/hamcrest-2.2.jar" "$jars/hamcrest.jar" \
	"$jars/hamcrest-integration-1.3.1-SNAPSHOT.jar" "$img/usr/share/java/"

# Archives built here get fixed dates, and zip -X leaves out the
# extra fields (uid/gid, extended times) so that they differ less between
# runs.
stamp() { find "$1" -exec touch -h -d '2024-01-01 00:00:00' {} +; }
pom() { # pom <dir> <groupId> <artifactId> <version>: what maven-archiver writes
	mkdir -p "$1/META-INF/maven/$2/$3"
	printf '#Created by Apache Maven 3.8.7\ngroupId=%s\nartifactId=%s\nversion=%s\n' "$2" "$3" "$4" \
		>"$1/META-INF/maven/$2/$3/pom.properties"
}

# 3. A war: its own pom.properties, two jars in WEB-INF/lib.
w=$tmp/war
mkdir -p "$w/META-INF" "$w/WEB-INF/lib" "$w/WEB-INF/classes/com/example"
printf 'Manifest-Version: 1.0\r\nCreated-By: Maven WAR Plugin 3.3.2\r\n\r\n' >"$w/META-INF/MANIFEST.MF"
pom "$w" com.example shop-web 1.4.0
printf '<web-app xmlns="https://jakarta.ee/xml/ns/jakartaee" version="5.0"/>\n' >"$w/WEB-INF/web.xml"
printf 'placeholder for compiled classes\n' >"$w/WEB-INF/classes/com/example/README"
cp "$jars/slf4j-simple.jar" "$jars/jcl-over-slf4j.jar" "$w/WEB-INF/lib/"
stamp "$w"
mkdir -p "$img/var/lib/jetty9/webapps"
(cd "$w" && zip -X -q -r "$img/var/lib/jetty9/webapps/shop.war" META-INF WEB-INF)

# 4. An ear holding that war and a library jar: a jar in a war in an ear
#    is two levels deep.
e=$tmp/ear
mkdir -p "$e/META-INF" "$e/lib"
printf 'Manifest-Version: 1.0\r\nCreated-By: Maven EAR Plugin 3.3.0\r\n\r\n' >"$e/META-INF/MANIFEST.MF"
pom "$e" com.example shop-ear 1.4.0
cp "$img/var/lib/jetty9/webapps/shop.war" "$e/shop-web-1.4.0.war"
cp "$jars/log4j-to-slf4j.jar" "$e/lib/"
stamp "$e"
mkdir -p "$img/opt/wildfly/standalone/deployments"
(cd "$e" && zip -X -q -r "$img/opt/wildfly/standalone/deployments/shop.ear" META-INF lib shop-web-1.4.0.war)

# 5. A Spring Boot style executable jar: nested jars stored (zip -0), as
#    Spring Boot's loader needs them, in BOOT-INF/lib.
b=$tmp/boot
mkdir -p "$b/META-INF" "$b/BOOT-INF/lib" "$b/BOOT-INF/classes/com/example"
printf 'Manifest-Version: 1.0\r\nMain-Class: org.springframework.boot.loader.JarLauncher\r\nStart-Class: com.example.Application\r\nSpring-Boot-Classes: BOOT-INF/classes/\r\nSpring-Boot-Lib: BOOT-INF/lib/\r\n\r\n' >"$b/META-INF/MANIFEST.MF"
pom "$b" com.example orders 2.0.1
printf 'placeholder for compiled classes\n' >"$b/BOOT-INF/classes/com/example/README"
cp "$jars/slf4j-api.jar" "$jars/log4j-to-slf4j.jar" "$b/BOOT-INF/lib/"
stamp "$b"
mkdir -p "$img/app"
(cd "$b" && zip -X -q -r "$img/app/orders.jar" META-INF BOOT-INF/classes && zip -X -q -0 -r "$img/app/orders.jar" BOOT-INF/lib)

# 6. A shaded ("uber") jar: two artifacts' contents merged, each with its
#    own pom.properties, the manifest of the first.
s=$tmp/shaded
mkdir -p "$s"
(cd "$s" && unzip -q -o "$jars/slf4j-api.jar" && unzip -q -o "$jars/slf4j-simple.jar" -x META-INF/MANIFEST.MF)
stamp "$s"
mkdir -p "$img/opt/tool"
(cd "$s" && zip -X -q -r "$img/opt/tool/tool-all.jar" .)

stamp "$img"

# 7. The expected packages, by unzip alone.
sh "$here/want.sh" "$img" >"$here/want.tsv"
